// SHA-256 over OpenSSL's low-level API. The deprecated SHA256_* functions run
// at the same speed as EVP here, and unlike EVP_MD_CTX (opaque before
// OpenSSL 4) their context can be exported and restored, which resume needs.
#include "CShims.h"

#include <errno.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

_Static_assert(sizeof(SHA256_CTX) == 112, "unexpected SHA256_CTX layout");

// Read-back chunk through the page cache: large enough to amortise the
// syscall, small enough to stay in L2 between the copy and the hash.
#define HASH_CHUNK (256 * 1024)
// Read-back chunk with O_DIRECT, from the device: larger, since each read
// waits for the device; two of them, so one is read while the other is
// hashed.
#define DIRECT_CHUNK (1024 * 1024)
#define RING         2

struct hl_hasher {
  int fd;
  int64_t size;
  int threaded;
  pthread_t thread;
  pthread_t reader;  // direct mode only: reads ahead into the ring
  int has_reader;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  // Guarded by `lock` in threaded mode; loop-thread-only in inline mode.
  int64_t prefix;       // contiguous bytes known to be on disk
  int64_t hashed;       // bytes folded into `ctx`
  SHA256_CTX snapshot;  // ctx at `hashed`, for export while the thread runs
  int stop;
  int error;
  CURLM *wake;  // woken when the digest is final or a read failed
  // The read-ahead ring (guarded by `lock`): slot i holds [at, at + n) at
  // `data` when `full`. The reader fills slots in order, the hashing thread
  // empties them in order.
  struct {
    unsigned char *buf;
    const unsigned char *data;
    int64_t at;
    size_t n;
    int full;
  } slot[RING];
  int64_t read_at;  // the reader's next offset
  // Owned by the hashing thread (threaded) or the loop thread (inline).
  SHA256_CTX ctx;
  size_t chunk;   // bytes per read; each slot holds chunk + alignment
  int direct_fd;  // O_DIRECT reads, or -1
};

void hl_sha256(const void *data, size_t len, uint8_t out[32]) {
  SHA256((const unsigned char *)data, len, out);
}

static void put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void ctx_export(const SHA256_CTX *c, uint8_t out[HL_SHA256_STATE_SIZE]) {
  uint64_t len = ((((uint64_t)c->Nh) << 32) | c->Nl) >> 3;
  memcpy(out, "sha\x03", 4);
  for (int i = 0; i < 8; i++) put_be32(out + 4 + 4 * i, c->h[i]);
  memset(out + 36, 0, 64);
  // OpenSSL keeps the partial block as bytes in memory order inside `data`.
  memcpy(out + 36, c->data, c->num);
  for (int i = 0; i < 8; i++) out[100 + i] = (uint8_t)(len >> (56 - 8 * i));
}

int64_t hl_sha256_state_offset(const uint8_t s[HL_SHA256_STATE_SIZE]) {
  if (memcmp(s, "sha\x03", 4) != 0) return -1;
  uint64_t len = 0;
  for (int i = 0; i < 8; i++) len = (len << 8) | s[100 + i];
  if (len > (uint64_t)INT64_MAX / 8) return -1;
  return (int64_t)len;
}

static int ctx_import(SHA256_CTX *c, const uint8_t s[HL_SHA256_STATE_SIZE]) {
  int64_t len = hl_sha256_state_offset(s);
  if (len < 0) return -1;
  SHA256_Init(c);
  for (int i = 0; i < 8; i++) c->h[i] = get_be32(s + 4 + 4 * i);
  uint64_t bits = (uint64_t)len << 3;
  c->Nl = (SHA_LONG)(bits & 0xffffffffu);
  c->Nh = (SHA_LONG)(bits >> 32);
  c->num = (unsigned int)(len % 64);
  memcpy(c->data, s + 36, c->num);
  return 0;
}

static int pread_full(int fd, unsigned char *buf, size_t n, int64_t off) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = pread(fd, buf + got, n - got, off + (int64_t)got);
    if (r < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (r == 0) return EIO;  // the file is shorter than what was written
    got += (size_t)r;
  }
  return 0;
}

// Reads [at, at + n) of the file into `buf`; returns where the bytes are in
// it (or NULL with *err set). O_DIRECT reads cover whole aligned blocks around the
// span; a short read at the end of the file is fine as long as it covers
// the span. A filesystem that refuses O_DIRECT reads (EINVAL) gets buffered
// ones from then on.
static const unsigned char *read_span(hl_hasher *h, unsigned char *buf, int64_t at, size_t n,
                                      int *err) {
  if (h->direct_fd >= 0) {
    int64_t base = at & ~(int64_t)(HL_DIRECT_ALIGN - 1);
    size_t lead = (size_t)(at - base);
    size_t want = (lead + n + HL_DIRECT_ALIGN - 1) & ~(size_t)(HL_DIRECT_ALIGN - 1);
    size_t got = 0;
    while (got < lead + n) {
      ssize_t r = pread(h->direct_fd, buf + got, want - got, base + (int64_t)got);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 && errno == EINVAL) break;
      if (r < 0) {
        *err = errno;
        return NULL;
      }
      if (r == 0) {
        *err = EIO;
        return NULL;
      }  // the file is shorter than what was written
      got += (size_t)r;
      if (got < lead + n && (got & (HL_DIRECT_ALIGN - 1)) != 0) break;  // unaligned: cannot go on
    }
    if (got >= lead + n) return buf + lead;
    h->direct_fd = -1;
  }
  *err = pread_full(h->fd, buf, n, at);
  return *err ? NULL : buf;
}

// Records a hashed span (lock held): progress, the exportable state, and a
// wake-up for the loop when the digest is final.
static void publish(hl_hasher *h, int64_t at) {
  h->hashed = at;
  h->snapshot = h->ctx;
  pthread_cond_broadcast(&h->cond);
  if (at == h->size && h->wake) curl_multi_wakeup(h->wake);
}

static void fail_read(hl_hasher *h, int err) {
  h->error = err;
  pthread_cond_broadcast(&h->cond);
  if (h->wake) curl_multi_wakeup(h->wake);
}

// Threaded mode through the page cache: read a chunk, hash it, repeat.
static void *hasher_main(void *arg) {
  hl_hasher *h = arg;
  pthread_mutex_lock(&h->lock);
  for (;;) {
    while (!h->stop && !h->error && h->hashed >= h->prefix) pthread_cond_wait(&h->cond, &h->lock);
    if (h->stop || h->error) break;
    int64_t at = h->hashed;
    int64_t to = h->prefix;
    pthread_mutex_unlock(&h->lock);

    int err = 0;
    while (at < to) {
      size_t n = (size_t)((to - at) < (int64_t)h->chunk ? (to - at) : (int64_t)h->chunk);
      const unsigned char *bytes = read_span(h, h->slot[0].buf, at, n, &err);
      if (!bytes) break;
      SHA256_Update(&h->ctx, bytes, n);
      at += (int64_t)n;
      // Publish each chunk so progress and checkpoints see a fresh frontier.
      pthread_mutex_lock(&h->lock);
      publish(h, at);
      int stop = h->stop;
      pthread_mutex_unlock(&h->lock);
      if (stop) break;
    }
    pthread_mutex_lock(&h->lock);
    if (err) fail_read(h, err);
  }
  pthread_mutex_unlock(&h->lock);
  return NULL;
}

// Direct mode, reading: each read waits for the device, so a second thread
// reads the next chunk into the ring while this one's is hashed.
static void *reader_main(void *arg) {
  hl_hasher *h = arg;
  int i = 0;
  pthread_mutex_lock(&h->lock);
  for (;;) {
    while (!h->stop && !h->error && (h->read_at >= h->prefix || h->slot[i].full))
      pthread_cond_wait(&h->cond, &h->lock);
    if (h->stop || h->error) break;
    int64_t at = h->read_at;
    size_t n =
        (size_t)((h->prefix - at) < (int64_t)h->chunk ? (h->prefix - at) : (int64_t)h->chunk);
    pthread_mutex_unlock(&h->lock);
    int err = 0;
    const unsigned char *bytes = read_span(h, h->slot[i].buf, at, n, &err);
    pthread_mutex_lock(&h->lock);
    if (!bytes) {
      fail_read(h, err);
      break;
    }
    h->slot[i].data = bytes;
    h->slot[i].at = at;
    h->slot[i].n = n;
    h->slot[i].full = 1;
    h->read_at = at + (int64_t)n;
    pthread_cond_broadcast(&h->cond);
    i = (i + 1) % RING;
  }
  pthread_mutex_unlock(&h->lock);
  return NULL;
}

// Direct mode, hashing: takes the ring's chunks in order.
static void *ring_hasher_main(void *arg) {
  hl_hasher *h = arg;
  int i = 0;
  pthread_mutex_lock(&h->lock);
  for (;;) {
    while (!h->stop && !h->error && !h->slot[i].full) pthread_cond_wait(&h->cond, &h->lock);
    if (h->stop || h->error) break;
    const unsigned char *bytes = h->slot[i].data;
    int64_t end = h->slot[i].at + (int64_t)h->slot[i].n;
    size_t n = h->slot[i].n;
    pthread_mutex_unlock(&h->lock);
    SHA256_Update(&h->ctx, bytes, n);
    pthread_mutex_lock(&h->lock);
    h->slot[i].full = 0;
    publish(h, end);
    i = (i + 1) % RING;
  }
  pthread_mutex_unlock(&h->lock);
  return NULL;
}

static void free_slots(hl_hasher *h) {
  for (int i = 0; i < RING; i++) free(h->slot[i].buf);
}

hl_hasher *hl_hasher_new(int fd, int64_t size, int threaded, const uint8_t *state, CURLM *wake,
                         int direct_fd) {
  hl_hasher *h = calloc(1, sizeof *h);
  if (!h) return NULL;
  h->fd = fd;
  h->size = size;
  h->threaded = threaded;
  h->wake = wake;
  h->direct_fd = direct_fd;
  // A small blob gets a buffer of its size, not a whole chunk.
  size_t chunk = direct_fd >= 0 ? DIRECT_CHUNK : HASH_CHUNK;
  if (size < (int64_t)chunk) chunk = size > 0 ? (size_t)size : 1;
  h->chunk = chunk;
  int slots = threaded && direct_fd >= 0 ? RING : 1;
  for (int i = 0; i < slots; i++) {
    if (posix_memalign((void **)&h->slot[i].buf, HL_DIRECT_ALIGN, chunk + 2 * HL_DIRECT_ALIGN) !=
        0) {
      free_slots(h);
      free(h);
      return NULL;
    }
  }
  if (state) {
    if (ctx_import(&h->ctx, state) != 0 || hl_sha256_state_offset(state) > size) {
      free_slots(h);
      free(h);
      return NULL;
    }
    h->hashed = hl_sha256_state_offset(state);
  } else {
    SHA256_Init(&h->ctx);
  }
  h->prefix = h->read_at = h->hashed;
  h->snapshot = h->ctx;
  pthread_mutex_init(&h->lock, NULL);
  pthread_cond_init(&h->cond, NULL);
  int failed = 0;
  if (threaded && slots == RING) {
    failed = pthread_create(&h->thread, NULL, ring_hasher_main, h) != 0;
    if (!failed && pthread_create(&h->reader, NULL, reader_main, h) != 0) {
      pthread_mutex_lock(&h->lock);
      h->stop = 1;
      pthread_cond_broadcast(&h->cond);
      pthread_mutex_unlock(&h->lock);
      pthread_join(h->thread, NULL);
      failed = 1;
    }
    h->has_reader = !failed;
  } else if (threaded) {
    failed = pthread_create(&h->thread, NULL, hasher_main, h) != 0;
  }
  if (failed) {
    pthread_mutex_destroy(&h->lock);
    pthread_cond_destroy(&h->cond);
    free_slots(h);
    free(h);
    return NULL;
  }
  return h;
}

void hl_hasher_free(hl_hasher *h) {
  if (!h) return;
  if (h->threaded) {
    pthread_mutex_lock(&h->lock);
    h->stop = 1;
    pthread_cond_broadcast(&h->cond);
    pthread_mutex_unlock(&h->lock);
    pthread_join(h->thread, NULL);
    if (h->has_reader) pthread_join(h->reader, NULL);
  }
  pthread_mutex_destroy(&h->lock);
  pthread_cond_destroy(&h->cond);
  free_slots(h);
  free(h);
}

void hl_hasher_offer(hl_hasher *h, int64_t offset, const void *buf, size_t len) {
  // Threaded mode never touches ctx from the loop thread.
  if (h->threaded || offset != h->hashed || h->prefix != h->hashed) return;
  SHA256_Update(&h->ctx, buf, len);
  h->hashed += (int64_t)len;
  h->prefix = h->hashed;
}

void hl_hasher_advance(hl_hasher *h, int64_t contiguous_prefix) {
  if (!h->threaded) {
    if (contiguous_prefix > h->prefix) h->prefix = contiguous_prefix;
    return;
  }
  pthread_mutex_lock(&h->lock);
  if (contiguous_prefix > h->prefix) {
    h->prefix = contiguous_prefix;
    pthread_cond_broadcast(&h->cond);  // the hashing thread, or the reader
  }
  pthread_mutex_unlock(&h->lock);
}

int64_t hl_hasher_sealed(const hl_hasher *h) {
  // Only the loop thread writes `prefix`, and only the loop thread calls
  // this: reading it without the lock races with nothing.
  return h->prefix;
}

int hl_hasher_step(hl_hasher *h, size_t budget) {
  if (h->threaded || h->error) return h->error;
  while (budget > 0 && h->hashed < h->prefix) {
    int64_t left = h->prefix - h->hashed;
    size_t n = (size_t)(left < (int64_t)h->chunk ? left : (int64_t)h->chunk);
    if (n > budget) n = budget;
    int err = 0;
    const unsigned char *bytes = read_span(h, h->slot[0].buf, h->hashed, n, &err);
    if (!bytes) {
      h->error = err;
      return err;
    }
    SHA256_Update(&h->ctx, bytes, n);
    h->hashed += (int64_t)n;
    budget -= n;
  }
  return 0;
}

int64_t hl_hasher_hashed(hl_hasher *h) {
  if (!h->threaded) return h->hashed;
  pthread_mutex_lock(&h->lock);
  int64_t v = h->hashed;
  pthread_mutex_unlock(&h->lock);
  return v;
}

int hl_hasher_error(hl_hasher *h) {
  if (!h->threaded) return h->error;
  pthread_mutex_lock(&h->lock);
  int v = h->error;
  pthread_mutex_unlock(&h->lock);
  return v;
}

int64_t hl_hasher_export(hl_hasher *h, uint8_t out[HL_SHA256_STATE_SIZE]) {
  if (!h->threaded) {
    ctx_export(&h->ctx, out);
    return h->hashed;
  }
  pthread_mutex_lock(&h->lock);
  SHA256_CTX copy = h->snapshot;
  int64_t at = h->hashed;
  pthread_mutex_unlock(&h->lock);
  ctx_export(&copy, out);
  return at;
}

int hl_hasher_digest(hl_hasher *h, uint8_t out[32]) {
  SHA256_CTX copy;
  if (h->threaded) {
    pthread_mutex_lock(&h->lock);
    int done = h->hashed == h->size;
    copy = h->snapshot;
    pthread_mutex_unlock(&h->lock);
    if (!done) return -1;
  } else {
    if (h->hashed != h->size) return -1;
    copy = h->ctx;
  }
  SHA256_Final(out, &copy);
  return 0;
}
