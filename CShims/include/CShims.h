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

// ---------------------------------------------------------------- responses
// The rule that protects the hash frontier: what a response to a ranged GET
// of [start, end) of a `total`-byte file may be before a byte of it is
// written. Pure (no curl, no I/O), so its table is tested and fuzzed
// without a server.
typedef struct hl_range_request {
  int64_t start;    // first requested byte
  int64_t end;      // exclusive end of the request
  int64_t total;    // size of the whole file
  int accept_full;  // a 200 with the whole file is acceptable: the caller
                    // sets it only when [start, total) holds nothing yet
} hl_range_request;

typedef enum hl_judgement {
  HL_JUDGED_RANGE = 0,       // 206 whose Content-Range is the request's
  HL_JUDGED_WHOLE = 1,       // 200 with the whole file: drop the first `start` bytes
  HL_JUDGED_BAD_STATUS = 2,  // any other status (3xx, 4xx, 5xx, a 200 not accepted)
  HL_JUDGED_BAD_CONTENT_RANGE =
      3,                     // 206 whose Content-Range is missing, malformed or another range
  HL_JUDGED_BAD_LENGTH = 4,  // 200 whose Content-Length is not the file's size
} hl_judgement;

// `content_range` is the header's value or NULL; `content_length` is -1
// when the response did not announce one.
hl_judgement hl_judge_response(long status, const char *content_range, int64_t content_length,
                               hl_range_request request);

// Parses "bytes FIRST-LAST/TOTAL" (TOTAL may be "*", given as -1). Returns 0
// on success, -1 on anything else.
int hl_parse_content_range(const char *value, int64_t *first, int64_t *last, int64_t *total);

// ---------------------------------------------------------------- sinks
// O_DIRECT offsets, lengths and buffer addresses are multiples of this (the
// largest logical block size of common devices).
#define HL_DIRECT_ALIGN 4096

// A file sink: where a range request's body goes. Each chunk is pwritten
// at its offset (no copy) and offered to the hash frontier.
//
// The response is judged at the first body byte, before anything is
// written (hl_judge_response). A rejected or failed write makes the
// callback return short, which aborts the transfer with CURLE_WRITE_ERROR;
// the snapshot's `verdict` says why.
//
// A sink never writes below its hasher's sealed prefix: a byte there may
// already be hashed, and writing it again would store bytes other than the
// ones the digest was computed over. Such a write is refused
// (HL_SINK_OVERLAP) instead.
typedef struct hl_sink hl_sink;

enum {
  HL_SINK_OK = 0,
  HL_SINK_BAD_STATUS = 1,         // status not acceptable for this request
  HL_SINK_BAD_CONTENT_RANGE = 2,  // 206 whose Content-Range is missing or wrong
  HL_SINK_BAD_LENGTH = 3,         // 200 whose Content-Length is not the size
  HL_SINK_OVERLONG = 4,           // more body than requested
  HL_SINK_WRITE_FAILED = 5,       // pwrite failed; see err_no
  HL_SINK_STOPPED = 7,            // reached stop_at on purpose (range split)
  HL_SINK_OVERLAP = 8,            // would rewrite bytes already sealed for hashing
};

// A rate limit shared by every file sink of a loop: `tokens` bytes may be
// taken now. A sink that finds none pauses its transfer (the write callback
// answers CURL_WRITEFUNC_PAUSE, so curl keeps the chunk and stops reading
// the socket: TCP pushes back on the server) and reports `paused`; the loop
// refills the bucket and resumes paused transfers (hl_sink_resume). A
// chunk is taken whole while any token is left, so the bucket may go into
// debt by at most one chunk per transfer, which the next refills repay.
typedef struct hl_bucket {
  double tokens;
} hl_bucket;

// What the loop reads of a sink, copied out in one call.
typedef struct hl_sink_state {
  int64_t start;     // first requested byte
  int64_t offset;    // next byte to write: everything before it is on disk
  int64_t received;  // next byte to receive: [offset, received) is held for alignment
  int64_t end;       // exclusive end of the request (the file's end once a 200 was taken)
  int64_t stop_at;   // exclusive end the transfer stops at
  long status;       // HTTP status at the first body byte (0 before)
  int checked;       // the response was judged
  int verdict;       // HL_SINK_*
  int err_no;        // errno of a failed write
  int paused;        // waiting for tokens of the rate limit
} hl_sink_state;

// A sink for `request` into `fd`; `hasher` may be NULL. Not attached to
// any transfer yet.
hl_sink *hl_sink_new(int fd, hl_range_request request, hl_hasher *hasher);
// Makes the sink `easy`'s write callback (WRITEFUNCTION, WRITEDATA); the
// first body byte is then judged from curl's status and headers.
void hl_sink_attach(hl_sink *sink, CURL *easy);
// Body bytes after the judgement (the write callback without it; tests and
// fuzzing feed a sink directly). Returns `len` when taken, less to abort the
// transfer, or CURL_WRITEFUNC_PAUSE.
size_t hl_sink_feed(hl_sink *sink, const char *data, size_t len);
void hl_sink_snapshot(const hl_sink *sink, hl_sink_state *out);
// Lowers the end the transfer stops at to `cut`, or as near as the bytes
// already received allow (received but carried bytes will be written):
// returns the new stop. Never raises it.
int64_t hl_sink_lower_stop(hl_sink *sink, int64_t cut);
// Writes any carried bytes; the loop calls it when a transfer ends, before
// reading `offset`. Returns 0, or -1 with the verdict set.
int hl_sink_flush(hl_sink *sink);
// Puts a sink in direct mode (before its transfer starts): `direct_fd`
// is the file opened O_WRONLY|O_DIRECT, `stage` an HL_DIRECT_ALIGN-aligned
// buffer of `stage_cap` bytes that the caller owns and keeps until the sink
// is freed. A write the filesystem refuses with EINVAL falls back to `fd`.
void hl_sink_use_direct(hl_sink *sink, int direct_fd, unsigned char *stage, size_t stage_cap);
// Direct mode: writes the whole pages gathered so far (a slow transfer
// would otherwise hold them until its stage fills). Returns 0, or -1 with
// the verdict set.
int hl_sink_drain(hl_sink *sink);
// Draws from `bucket` (NULL: no limit) from now on.
void hl_sink_limit(hl_sink *sink, hl_bucket *bucket);
// Resumes a transfer its sink paused for want of tokens. curl delivers the
// held chunk from inside this call, so the sink may pause it again at once.
void hl_sink_resume(hl_sink *sink);
// The start of a refused response's body (at most 512 bytes), for the
// error message.
const char *hl_sink_error_body(const hl_sink *sink, size_t *len);
void hl_sink_free(hl_sink *sink);

// ---------------------------------------------------------------- bodies
// A response body kept in memory (manifests, tokens, error documents) up to
// `limit` bytes; more fails the transfer with CURLE_WRITE_ERROR and sets
// too_large. Attached to `easy` at creation.
typedef struct hl_body hl_body;
hl_body *hl_body_new(CURL *easy, size_t limit);
const uint8_t *hl_body_bytes(const hl_body *body, size_t *len);
size_t hl_body_limit(const hl_body *body);
int hl_body_too_large(const hl_body *body);
void hl_body_free(hl_body *body);

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
int hl_ed25519_sign(const uint8_t seed[32], const uint8_t *message, size_t length,
                    uint8_t signature[64]);
int hl_ed25519_public_key(const uint8_t seed[32], uint8_t public_key[32]);

#ifdef __cplusplus
}
#endif
#endif
