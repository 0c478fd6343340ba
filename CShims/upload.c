// The request body of an upload (a PATCH or PUT of a blob's bytes), read
// by curl straight from the blob's file: pread at the next offset into
// curl's own upload buffer, so no blob is ever held in memory and nothing
// crosses into Swift per chunk (reason 2 in CShims.h).
#include "CShims.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

struct hl_upload {
  int fd;
  int64_t offset;  // next byte to send
  int64_t end;     // one past the last byte
  int error;       // errno of a failed pread, or 0
};

static size_t upload_read(char *buffer, size_t size, size_t count, void *data) {
  hl_upload *u = data;
  size_t want = size * count;
  if (u->end - u->offset < (int64_t)want) want = (size_t)(u->end - u->offset);
  if (want == 0) return 0;
  ssize_t got;
  do {
    got = pread(u->fd, buffer, want, (off_t)u->offset);
  } while (got < 0 && errno == EINTR);
  if (got <= 0) {
    // A short file (truncated under us) is as fatal as an I/O error: curl
    // would otherwise send a body shorter than the length it announced.
    u->error = got < 0 ? errno : EIO;
    return CURL_READFUNC_ABORT;
  }
  u->offset += got;
  return (size_t)got;
}

hl_upload *hl_upload_new(CURL *easy, int fd, int64_t start, int64_t end) {
  hl_upload *u = calloc(1, sizeof *u);
  if (!u) return NULL;
  u->fd = fd;
  u->offset = start;
  u->end = end;
  if (curl_easy_setopt(easy, CURLOPT_UPLOAD, 1L) != CURLE_OK ||
      curl_easy_setopt(easy, CURLOPT_READFUNCTION, upload_read) != CURLE_OK ||
      curl_easy_setopt(easy, CURLOPT_READDATA, u) != CURLE_OK ||
      curl_easy_setopt(easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t)(end - start)) != CURLE_OK) {
    free(u);
    return NULL;
  }
  return u;
}

void hl_upload_free(hl_upload *u) { free(u); }

int hl_upload_error(const hl_upload *u) { return u->error; }
