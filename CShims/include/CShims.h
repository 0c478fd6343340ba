// CShims: the thin C layer under HaulKit.
//
// It exists for these reasons and no others:
//   1. Swift cannot call C variadic functions, and curl_easy_setopt,
//      curl_easy_getinfo, curl_multi_setopt and curl_share_setopt are all
//      variadic. Each wrapper below fixes one argument type; two more
//      flatten structs Swift imports poorly (curl headers, CURLMsg).
//   2. The per-chunk hot path (curl write callback -> pwrite at the
//      transfer's offset -> SHA-256) must not allocate, retain or cross into
//      Swift: curl calls it for every <=16 KiB of body. The sink also
//      enforces the store's integrity rule: it never writes below the hash
//      frontier. An upload's body is the same path reversed (curl read
//      callback <- pread), so a pushed blob is never held in memory.
//   3. OpenSSL's SHA-256 context must be exported and restored as bytes
//      (for resume), which needs the low-level SHA256_CTX layout; the hash
//      frontier's thread lives beside it.
//   4. Linux calls and flags Swift's Glibc module does not export (fallocate,
//      FICLONE, O_DIRECT)
//      and OpenSSL's Ed25519 (Ollama's signed token requests) and MD5 (the
//      etag of Ollama's part uploads).
//
// Everything else (scheduling, retries, resume, events) is policy and lives
// in Swift. Every exported symbol is prefixed `hl_`.
#ifndef HAUL_CSHIMS_H
#define HAUL_CSHIMS_H

// Give CURL/CURLM/CURLSH distinct incomplete types so Swift sees them as
// distinct OpaquePointers rather than interchangeable void pointers.
#define CURL_STRICTER 1
#include <curl/curl.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// ---------------------------------------------------------------- process
// Initialises OpenSSL without its atexit handler (which races teardown of
// curl handles at exit) and then libcurl. Idempotent; call before any other
// hl_ or curl function.
void hl_global_init(void);

// ---------------------------------------------------------------- syscalls
// fallocate(2) is a Linux extension that Swift's Glibc module does not
// export (it sits behind _GNU_SOURCE).
int hl_fallocate(int fd, int64_t offset, int64_t length);  // 0 or -1 with errno
// Makes `dst` share `src`'s blocks, copy-on-write (FICLONE: btrfs, XFS); 0 or
// -1 with errno (EOPNOTSUPP, EXDEV, ... where the filesystem cannot).
int hl_reflink(int dst, int src);
// rename(2) that fails with EEXIST instead of replacing what is at `to`
// (renameat2 RENAME_NOREPLACE, also behind _GNU_SOURCE); 0 or -1 with errno.
int hl_rename_noreplace(const char *from, const char *to);
// O_DIRECT, which Swift's Glibc module does not export either (its value
// differs between architectures).
int hl_o_direct(void);

// ---------------------------------------------------------------- variadics
CURLcode hl_easy_setopt_long(CURL *easy, CURLoption option, long value);
CURLcode hl_easy_setopt_off(CURL *easy, CURLoption option, curl_off_t value);
CURLcode hl_easy_setopt_str(CURL *easy, CURLoption option, const char *value);
CURLcode hl_easy_setopt_ptr(CURL *easy, CURLoption option, void *value);
CURLcode hl_easy_getinfo_long(CURL *easy, CURLINFO info, long *out);
CURLcode hl_easy_getinfo_off(CURL *easy, CURLINFO info, curl_off_t *out);
CURLcode hl_easy_getinfo_str(CURL *easy, CURLINFO info, const char **out);
CURLMcode hl_multi_setopt_long(CURLM *multi, CURLMoption option, long value);
CURLSHcode hl_share_setopt_long(CURLSH *share, CURLSHoption option, long value);

// The value of the last response header `name` of the last request, or NULL.
// (curl_easy_header's out-parameter struct is awkward from Swift.)
const char *hl_easy_header(CURL *easy, const char *name);

// Pops the next finished transfer from the multi handle. Returns 1 and fills
// `easy`/`result` when one was found, 0 when there is none. (CURLMsg holds a
// union that Swift imports poorly.)
int hl_multi_next_done(CURLM *multi, CURL **easy, CURLcode *result);

// ---------------------------------------------------------------- SHA-256
// Go's crypto/sha256 MarshalBinary format ("sha\x03", 8 big-endian state
// words, the 64-byte block buffer, big-endian byte length): the same bytes
// the CNCF registry stores, and independent of OpenSSL's struct layout.
#define HL_SHA256_STATE_SIZE 108

// One-shot digest of a memory buffer.
void hl_sha256(const void *data, size_t len, uint8_t out[32]);

// ---------------------------------------------------------------- hasher
// The hash frontier of one blob: SHA-256 of the contiguous prefix [0, hashed)
// of a file that is being written out of order.
//
// The owner (the event-loop thread) calls hl_hasher_advance() with the end of
// the contiguous written prefix. In threaded mode a dedicated thread preads
// and hashes [hashed, prefix) from the page cache while the loop keeps
// receiving. In inline mode bytes that land exactly at the frontier are
// hashed straight from curl's buffer by hl_hasher_offer(), and
// hl_hasher_step() catches up over bytes that landed ahead of it.
typedef struct hl_hasher hl_hasher;

// Creates a hasher for a file of `size` bytes. `state` may be NULL (start at
// offset 0) or a HL_SHA256_STATE_SIZE buffer from hl_hasher_export (resume at
// the offset it encodes). In threaded mode the thread calls
// curl_multi_wakeup(wake) when the digest is final or a read failed, so the
// loop waits for it without polling (`wake` may be NULL; it must outlive the
// hasher). `direct_fd` (or -1) is the same file opened O_RDONLY|O_DIRECT:
// reads then bypass the page cache (for data written with O_DIRECT, which
// is not in it); a filesystem that refuses such a read falls back to `fd`.
// Returns NULL on a malformed state or when the thread cannot be started.
hl_hasher *hl_hasher_new(int fd, int64_t size, int threaded, const uint8_t *state, CURLM *wake,
                         int direct_fd);
void hl_hasher_free(hl_hasher *h);

// Loop thread only.
void hl_hasher_offer(hl_hasher *h, int64_t offset, const void *buf, size_t len);
void hl_hasher_advance(hl_hasher *h, int64_t contiguous_prefix);
// The end of the prefix handed to the hasher: bytes below it are final and
// may be hashed at any moment, so nothing may write there again.
int64_t hl_hasher_sealed(const hl_hasher *h);
// Inline mode: hash at most `budget` bytes of [hashed, prefix) via pread.
// Returns 0 or an errno.
int hl_hasher_step(hl_hasher *h, size_t budget);

// Any thread.
int64_t hl_hasher_hashed(hl_hasher *h);
int hl_hasher_error(hl_hasher *h);  // errno of a failed pread, or 0
// Exports the state at the current frontier; returns the frontier offset.
int64_t hl_hasher_export(hl_hasher *h, uint8_t out[HL_SHA256_STATE_SIZE]);
// Once hashed == size: writes the digest and returns 0; otherwise -1.
int hl_hasher_digest(hl_hasher *h, uint8_t out[32]);

// Decodes the byte offset a state encodes; -1 if the state is malformed.
int64_t hl_sha256_state_offset(const uint8_t state[HL_SHA256_STATE_SIZE]);

// ---------------------------------------------------------------- sinks
// O_DIRECT offsets, lengths and buffer addresses are multiples of this (the
// largest logical block size of common devices).
#define HL_DIRECT_ALIGN 4096

// Where a transfer's body goes. A file sink pwrites each chunk at its offset
// (no copy); a memory sink appends to a capped buffer (manifests, tokens).
//
// The response is checked at the first body byte, before anything is
// written: a file sink accepts only 206 with a Content-Range equal to the
// request, or, when `accept_full` is set, a 200 whose body is the whole
// file: its first `start` bytes are dropped unread and the transfer then
// covers [start, total). (The caller sets `accept_full` only when
// [start, total) holds nothing yet.) A rejected or failed write makes the
// callback return short, which aborts the transfer with CURLE_WRITE_ERROR;
// `reject` says why.
//
// A file sink never writes below its hasher's sealed prefix: a byte there
// may already be hashed, and writing it again would store bytes other than
// the ones the digest was computed over. Such a write is refused
// (HL_SINK_OVERLAP) instead.
enum {
  HL_SINK_OK = 0,
  HL_SINK_BAD_STATUS = 1,         // status not acceptable for this request
  HL_SINK_BAD_CONTENT_RANGE = 2,  // 206 whose Content-Range is missing or wrong
  HL_SINK_BAD_LENGTH = 3,         // 200 whose Content-Length is not the size
  HL_SINK_OVERLONG = 4,           // more body than requested
  HL_SINK_WRITE_FAILED = 5,       // pwrite failed; see err_no
  HL_SINK_TOO_LARGE = 6,          // memory sink over its limit
  HL_SINK_STOPPED = 7,            // reached stop_at on purpose (range split)
  HL_SINK_OVERLAP = 8,            // would rewrite bytes already sealed for hashing
};

// A rate limit shared by every file sink of a loop: `tokens` bytes may be
// taken now. A sink that finds none pauses its transfer (the write callback
// answers CURL_WRITEFUNC_PAUSE, so curl keeps the chunk and stops reading
// the socket: TCP pushes back on the server) and sets `paused`; the loop
// refills the bucket and resumes paused transfers (hl_sink_resume). A
// chunk is taken whole while any token is left, so the bucket may go into
// debt by at most one chunk per transfer, which the next refills repay.
typedef struct hl_bucket {
  double tokens;
} hl_bucket;

typedef struct hl_sink {
  CURL *easy;
  hl_bucket *bucket;    // NULL: no limit
  int paused;           // the last chunk was refused for want of tokens
  int fd;               // -1 for a memory sink
  int64_t start;        // first requested byte
  int64_t offset;       // next byte to write (everything before it is on disk)
  int64_t end;          // exclusive end of the request
  int64_t stop_at;      // exclusive end to stop at (<= end); the loop may lower it
  int64_t total;        // size of the whole file, for Content-Range checks
  int accept_full;
  int64_t skip;         // body bytes still to drop (a 200 for a request past 0)
  int checked;          // the response was validated
  long status;          // HTTP status seen at the first body byte
  int reject;           // HL_SINK_*
  int err_no;
  hl_hasher *hasher;    // may be NULL
  unsigned char *mem;
  size_t mem_len, mem_cap, mem_limit;
  // Body of a refused 3xx/4xx/5xx response: drained (so curl finishes the
  // response, computes the redirect URL and can reuse the connection) up to
  // HL_SINK_DRAIN_LIMIT, and its start kept for the error message.
  size_t drained;
  size_t error_body_len;
  char error_body[512];
  char error[CURL_ERROR_SIZE];
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
  int direct_fd;        // -1: buffered only
  unsigned char *stage;
  size_t stage_cap;
} hl_sink;

#define HL_SINK_DRAIN_LIMIT (64 * 1024)

// Both attach the sink to `easy` (WRITEFUNCTION, WRITEDATA, ERRORBUFFER).
hl_sink *hl_sink_new_file(CURL *easy, int fd, int64_t start, int64_t end,
                          int64_t total, int accept_full, hl_hasher *hasher);
hl_sink *hl_sink_new_memory(CURL *easy, size_t limit);
void hl_sink_free(hl_sink *sink);
// Writes any carried bytes; the loop calls it when a transfer ends, before
// reading `offset`. Returns 0, or -1 with `reject`/`err_no` set.
int hl_sink_flush(hl_sink *sink);
// Puts a file sink in direct mode (before its transfer starts): `direct_fd`
// is the file opened O_WRONLY|O_DIRECT, `stage` an HL_DIRECT_ALIGN-aligned
// buffer of `stage_cap` bytes that the caller owns and keeps until the sink
// is freed. A write the filesystem refuses with EINVAL falls back to `fd`.
void hl_sink_use_direct(hl_sink *sink, int direct_fd, unsigned char *stage, size_t stage_cap);
// Direct mode: writes the whole pages gathered so far (a slow transfer
// would otherwise hold them until its stage fills). Returns 0, or -1 with
// `reject`/`err_no` set.
int hl_sink_drain(hl_sink *sink);
// Resumes a transfer its sink paused for want of tokens. curl delivers the
// held chunk from inside this call, so the sink may pause it again at once.
void hl_sink_resume(hl_sink *sink);
// Lowers the end the transfer stops at to `cut`, or as near as the bytes
// already received allow (received but carried bytes will be written):
// returns the new stop. Never raises it.
int64_t hl_sink_lower_stop(hl_sink *sink, int64_t cut);

// Parses "bytes FIRST-LAST/TOTAL" (TOTAL may be "*", given as -1). Returns 0
// on success, -1 on anything else. Exposed for tests and fuzzing.
int hl_parse_content_range(const char *value, int64_t *first, int64_t *last,
                           int64_t *total);

// ----------------------------------------------------------------- upload
// A request body read from a file (bytes [start, end) of fd), for PATCH and
// PUT of blob bytes: sets CURLOPT_UPLOAD, the read callback and the size.
// The caller sets the method and frees it after the handle is cleaned up.
// With `md5` non-zero the bytes are MD5-hashed as they are read (Ollama's
// part uploads name each part's MD5).
typedef struct hl_upload hl_upload;
hl_upload *hl_upload_new(CURL *easy, int fd, int64_t start, int64_t end, int md5);
void hl_upload_free(hl_upload *upload);
int hl_upload_error(const hl_upload *upload);  // errno of a failed read, or 0
// The MD5 of the body, when it was asked for and every byte was read: 0, or
// -1 (not asked, or not all sent).
int hl_upload_md5(const hl_upload *upload, uint8_t out[16]);
// The MD5 of `data` (an upload's closing etag): 0 on success, -1 on failure.
int hl_md5(const uint8_t *data, size_t length, uint8_t out[16]);

// Ed25519 (OpenSSL): sign `message` with the key whose 32-byte seed is
// given, or derive its public key. 0 on success, -1 on failure.
int hl_ed25519_sign(const uint8_t seed[32], const uint8_t *message, size_t length, uint8_t signature[64]);
int hl_ed25519_public_key(const uint8_t seed[32], uint8_t public_key[32]);

#ifdef __cplusplus
}
#endif
#endif
