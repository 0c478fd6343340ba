// The hot path: curl's write callback. Each call carries at most 16 KiB
// (CURL_MAX_WRITE_SIZE); the bytes go straight from curl's buffer to pwrite
// at the transfer's offset, and to the hash frontier when they land on it.
// Writes end on page boundaries: the few bytes past the last boundary wait
// in the sink (copied, < 4 KiB) and lead the next write. In direct mode
// (O_DIRECT, an option) the bytes gather in an aligned stage instead and go
// to disk a stage at a time, past the page cache.
#include "CShims.h"

#include <sys/uio.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// A file sink: one range request's body, written in place. Only the
// functions in CShims.h touch it; Swift reads it through hl_sink_snapshot.
struct hl_sink {
  CURL *easy;         // NULL until attached (tests feed bytes directly)
  hl_bucket *bucket;  // NULL: no limit
  int paused;         // the last chunk was refused for want of tokens
  int fd;
  int64_t start;    // first requested byte
  int64_t offset;   // next byte to write (everything before it is on disk)
  int64_t end;      // exclusive end of the request
  int64_t stop_at;  // exclusive end to stop at (<= end); the loop may lower it
  int64_t total;    // size of the whole file, for Content-Range checks
  int accept_full;
  int64_t skip;  // body bytes still to drop (a 200 for a request past 0)
  int checked;   // the response was judged
  long status;   // HTTP status seen at the first body byte
  int reject;    // HL_SINK_*
  int err_no;
  hl_hasher *hasher;  // may be NULL
  // Body of a refused 3xx/4xx/5xx response: drained (so curl finishes the
  // response, computes the redirect URL and can reuse the connection) up to
  // HL_SINK_DRAIN_LIMIT, and its start kept for the error message.
  size_t drained;
  size_t error_body_len;
  char error_body[512];
  // Bytes [offset, offset + carry_len) received but not yet written: writes
  // end on page boundaries, because a write that ends mid-page into a new
  // block makes the kernel zero the rest of that page first (11% of a pull's
  // CPU in `perf`). Flushed when the range ends (hl_sink_flush).
  size_t carry_len;
  unsigned char carry[4096];
  // Direct mode (hl_sink_use_direct): once `offset` is page-aligned, bytes
  // gather in `stage` (aligned, `stage_cap` bytes, a multiple of
  // HL_DIRECT_ALIGN; carry_len counts them) and go to disk a whole stage at
  // a time through `direct_fd`, past the page cache. An unaligned head or
  // tail goes through `fd`.
  int direct_fd;  // -1: buffered only
  unsigned char *stage;
  size_t stage_cap;
};

#define HL_SINK_DRAIN_LIMIT (64 * 1024)

// Judges the response once, at its first body byte, before any byte is
// written (hl_judge_response), and applies a whole-file 200: the bytes
// before the request are dropped (they are held already), the rest covers
// the file.
static void judge(hl_sink *s) {
  s->checked = 1;
  curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &s->status);
  curl_off_t length = -1;
  if (s->status == 200) curl_easy_getinfo(s->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
  hl_range_request request = {s->start, s->end, s->total, s->accept_full};
  switch (hl_judge_response(s->status, hl_easy_header(s->easy, "Content-Range"), length, request)) {
  case HL_JUDGED_RANGE:
    return;
  case HL_JUDGED_WHOLE:
    s->skip = s->start;
    if (s->stop_at == s->end) s->stop_at = s->total;
    s->end = s->total;
    return;
  case HL_JUDGED_BAD_CONTENT_RANGE:
    s->reject = HL_SINK_BAD_CONTENT_RANGE;
    return;
  case HL_JUDGED_BAD_LENGTH:
    s->reject = HL_SINK_BAD_LENGTH;
    return;
  case HL_JUDGED_BAD_STATUS:
    s->reject = HL_SINK_BAD_STATUS;
    return;
  }
}

#define HL_PAGE HL_DIRECT_ALIGN

// pwrite of two buffers back to back at `offset`, whole or failed.
static int write_two(hl_sink *s, const unsigned char *a, size_t alen, const char *b, size_t blen,
                     int64_t offset) {
  struct iovec iov[2] = {{(void *)a, alen}, {(void *)b, blen}};
  struct iovec *v = alen ? iov : iov + 1;
  int count = alen ? 2 : 1;
  size_t left = alen + blen;
  while (left > 0) {
    ssize_t w = pwritev(s->fd, v, count, offset);
    if (w < 0) {
      if (errno == EINTR) continue;
      s->err_no = errno;
      s->reject = HL_SINK_WRITE_FAILED;
      return -1;
    }
    offset += w;
    left -= (size_t)w;
    while (count > 0 && (size_t)w >= v->iov_len) {
      w -= (ssize_t)v->iov_len;
      v++;
      count--;
    }
    if (count > 0) {
      v->iov_base = (char *)v->iov_base + w;
      v->iov_len -= (size_t)w;
    }
  }
  return 0;
}

// Bytes received but not written yet: the page carry, or in direct mode
// the stage.
static unsigned char *held(hl_sink *s) { return s->stage ? s->stage : s->carry; }

static int page_aligned(int64_t offset) { return (offset & (HL_PAGE - 1)) == 0; }

// Writes `len` bytes at `offset` through the O_DIRECT descriptor; a
// filesystem that refuses that (EINVAL: no O_DIRECT, or another alignment)
// gets this and every later write of the sink through the page cache.
static int write_direct(hl_sink *s, const unsigned char *buf, size_t len, int64_t offset) {
  size_t done = 0;
  while (done < len && s->direct_fd >= 0) {
    ssize_t w = pwrite(s->direct_fd, buf + done, len - done, offset + (int64_t)done);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno == EINVAL) break;
    if (w < 0) {
      s->err_no = errno;
      s->reject = HL_SINK_WRITE_FAILED;
      return -1;
    }
    done += (size_t)w;
    // A short write leaves an unaligned offset that O_DIRECT cannot take.
    if (done < len && ((done & (HL_PAGE - 1)) != 0)) break;
  }
  if (done == len) return 0;
  s->direct_fd = -1;
  return write_two(s, buf + done, len - done, NULL, 0, offset + (int64_t)done);
}

// Writes the first `len` (whole pages) staged bytes and moves the rest to
// the front of the stage.
static int write_staged(hl_sink *s, size_t len) {
  if (write_direct(s, s->stage, len, s->offset) != 0) return -1;
  if (s->hasher) hl_hasher_offer(s->hasher, s->offset, s->stage, len);
  s->offset += (int64_t)len;
  s->carry_len -= len;
  if (s->carry_len) memmove(s->stage, s->stage + len, s->carry_len);
  return 0;
}

// Writes everything staged: whole pages directly, the last part page
// through the page cache.
static int flush_staged(hl_sink *s) {
  size_t whole = s->carry_len & ~(size_t)(HL_PAGE - 1);
  if (whole && write_staged(s, whole) != 0) return -1;
  if (s->carry_len == 0) return 0;
  if (write_two(s, s->stage, s->carry_len, NULL, 0, s->offset) != 0) return -1;
  if (s->hasher) hl_hasher_offer(s->hasher, s->offset, s->stage, s->carry_len);
  s->offset += (int64_t)s->carry_len;
  s->carry_len = 0;
  return 0;
}

// Direct mode from a page-aligned offset: gather a whole stage, write it.
static void store_staged(hl_sink *s, const char *data, size_t take, int final) {
  while (take > 0) {
    size_t n = s->stage_cap - s->carry_len;
    if (n > take) n = take;
    memcpy(s->stage + s->carry_len, data, n);
    s->carry_len += n;
    data += n;
    take -= n;
    if (s->carry_len == s->stage_cap && write_staged(s, s->stage_cap) != 0) return;
  }
  if (final) flush_staged(s);
}

// Accepts `take` more bytes: writes the carry and the data up to the last
// page boundary (or everything when `final`), carries the rest. In direct
// mode that happens only until the offset is page-aligned; from there the
// stage gathers the bytes.
static void store(hl_sink *s, const char *data, size_t take, int final) {
  if (s->stage && page_aligned(s->offset)) {
    store_staged(s, data, take, final);
    return;
  }
  unsigned char *carry = held(s);
  int64_t pending_end = s->offset + (int64_t)s->carry_len + (int64_t)take;
  int64_t write_end = final ? pending_end : (pending_end & ~(int64_t)(HL_PAGE - 1));
  if (write_end <= s->offset) {
    memcpy(carry + s->carry_len, data, take);
    s->carry_len += take;
    return;
  }
  size_t from_data = (size_t)(write_end - s->offset) - s->carry_len;
  if (write_two(s, carry, s->carry_len, data, from_data, s->offset) != 0) return;
  if (s->hasher) {
    if (s->carry_len) hl_hasher_offer(s->hasher, s->offset, carry, s->carry_len);
    if (from_data) hl_hasher_offer(s->hasher, s->offset + (int64_t)s->carry_len, data, from_data);
  }
  s->offset = write_end;
  s->carry_len = take - from_data;
  memcpy(carry, data + from_data, s->carry_len);
}

int hl_sink_flush(hl_sink *s) {
  if (s->fd < 0 || s->carry_len == 0) return 0;
  if (s->hasher && s->offset < hl_hasher_sealed(s->hasher)) {
    s->reject = HL_SINK_OVERLAP;
    return -1;
  }
  if (s->stage && page_aligned(s->offset)) return flush_staged(s);
  unsigned char *carry = held(s);
  if (write_two(s, carry, s->carry_len, NULL, 0, s->offset) != 0) return -1;
  if (s->hasher) hl_hasher_offer(s->hasher, s->offset, carry, s->carry_len);
  s->offset += (int64_t)s->carry_len;
  s->carry_len = 0;
  return 0;
}

int hl_sink_drain(hl_sink *s) {
  if (!s->stage || !page_aligned(s->offset) || s->carry_len < HL_PAGE || s->reject) return 0;
  if (s->hasher && s->offset < hl_hasher_sealed(s->hasher)) {
    s->reject = HL_SINK_OVERLAP;
    return -1;
  }
  return write_staged(s, s->carry_len & ~(size_t)(HL_PAGE - 1));
}

void hl_sink_use_direct(hl_sink *s, int direct_fd, unsigned char *stage, size_t stage_cap) {
  if (s->fd < 0 || direct_fd < 0 || !stage || stage_cap < HL_PAGE || (stage_cap & (HL_PAGE - 1)) ||
      ((uintptr_t)stage & (HL_DIRECT_ALIGN - 1)))
    return;
  s->direct_fd = direct_fd;
  s->stage = stage;
  s->stage_cap = stage_cap;
}

int64_t hl_sink_lower_stop(hl_sink *s, int64_t cut) {
  int64_t received = s->offset + (int64_t)s->carry_len;
  if (cut < received) cut = received;
  if (cut < s->stop_at) s->stop_at = cut;
  return s->stop_at;
}

size_t hl_sink_feed(hl_sink *s, const char *data, size_t n) {
  if (s->reject == HL_SINK_BAD_STATUS && s->status >= 300) {
    // A redirect or error page: keep its start, drain the rest.
    size_t room = sizeof s->error_body - s->error_body_len;
    size_t keep = n < room ? n : room;
    memcpy(s->error_body + s->error_body_len, data, keep);
    s->error_body_len += keep;
    s->drained += n;
    return s->drained <= HL_SINK_DRAIN_LIMIT ? n : 0;
  }
  if (s->reject) return 0;
  if (s->bucket) {
    if (s->bucket->tokens <= 0) {
      s->paused = 1;
      return CURL_WRITEFUNC_PAUSE;
    }
    s->bucket->tokens -= (double)n;
  }
  size_t skipped = 0;
  if (s->skip > 0) {
    skipped = (int64_t)n < s->skip ? n : (size_t)s->skip;
    s->skip -= (int64_t)skipped;
    if (skipped == n) return n;
  }
  size_t take = n - skipped;
  int64_t received = s->offset + (int64_t)s->carry_len;
  if (received + (int64_t)take > s->stop_at) {
    take = (size_t)(s->stop_at - received);
    s->reject = s->stop_at < s->end ? HL_SINK_STOPPED : HL_SINK_OVERLONG;
  }
  if ((take > 0 || s->carry_len > 0) && s->hasher && s->offset < hl_hasher_sealed(s->hasher)) {
    s->reject = HL_SINK_OVERLAP;
    return 0;
  }
  store(s, data + skipped, take, received + (int64_t)take >= s->stop_at);
  return s->reject ? 0 : n;
}

// curl's write callback: the judgement at the first body byte, then feed.
static size_t write_file(char *data, size_t one, size_t n, void *arg) {
  hl_sink *s = arg;
  (void)one;  // always 1 for write callbacks
  if (!s->checked) judge(s);
  return hl_sink_feed(s, data, n);
}

hl_sink *hl_sink_new(int fd, hl_range_request request, hl_hasher *hasher) {
  hl_sink *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->fd = fd;
  s->direct_fd = -1;
  s->start = s->offset = request.start;
  s->end = s->stop_at = request.end;
  s->total = request.total;
  s->accept_full = request.accept_full;
  s->hasher = hasher;
  return s;
}

void hl_sink_attach(hl_sink *s, CURL *easy) {
  s->easy = easy;
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, write_file);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, s);
}

void hl_sink_snapshot(const hl_sink *s, hl_sink_state *out) {
  out->start = s->start;
  out->offset = s->offset;
  out->received = s->offset + (int64_t)s->carry_len;
  out->end = s->end;
  out->stop_at = s->stop_at;
  out->status = s->status;
  out->checked = s->checked;
  out->verdict = s->reject;
  out->err_no = s->err_no;
  out->paused = s->paused;
}

void hl_sink_limit(hl_sink *s, hl_bucket *bucket) { s->bucket = bucket; }

void hl_sink_resume(hl_sink *s) {
  if (!s->paused || !s->easy) return;
  s->paused = 0;
  curl_easy_pause(s->easy, CURLPAUSE_CONT);
}

const char *hl_sink_error_body(const hl_sink *s, size_t *len) {
  *len = s->error_body_len;
  return s->error_body;
}

void hl_sink_free(hl_sink *s) { free(s); }
