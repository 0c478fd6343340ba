// The request body of an upload (a PATCH or PUT of a blob's bytes), read
// by curl straight from the blob's file: pread at the next offset into
// curl's own upload buffer, so no blob is ever held in memory and nothing
// crosses into Swift per chunk (reason 2 in CShims.h). When asked, the
// bytes are MD5-hashed as they go: Ollama's part uploads close with the
// parts' MD5s (server/upload.go, `blobUpload.Run`'s etag).
#include "CShims.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct hl_upload {
  int fd;
  int64_t offset;   // next byte to send
  int64_t end;      // one past the last byte
  int error;        // errno of a failed pread, or 0
  EVP_MD_CTX *md5;  // the bytes read so far, when asked; NULL otherwise
  int md5_done;     // every byte was read once, in order: md5_value holds
  uint8_t md5_value[16];
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
  // Curl reads the body once, in order (no seek callback is set, so it
  // cannot rewind): the MD5 of what was read is the MD5 of what was sent.
  if (u->md5) {
    unsigned int length = 0;
    if (EVP_DigestUpdate(u->md5, buffer, (size_t)got) != 1 ||
        (u->offset == u->end && EVP_DigestFinal_ex(u->md5, u->md5_value, &length) != 1)) {
      u->error = EIO;
      return CURL_READFUNC_ABORT;
    }
    if (u->offset == u->end) u->md5_done = 1;
  }
  return (size_t)got;
}

hl_upload *hl_upload_new(CURL *easy, int fd, int64_t start, int64_t end, int md5) {
  hl_upload *u = calloc(1, sizeof *u);
  if (!u) return NULL;
  u->fd = fd;
  u->offset = start;
  u->end = end;
  if (md5) {
    u->md5 = EVP_MD_CTX_new();
    if (!u->md5 || EVP_DigestInit_ex(u->md5, EVP_md5(), NULL) != 1) {
      hl_upload_free(u);
      return NULL;
    }
    if (start == end) {
      unsigned int length = 0;
      u->md5_done = EVP_DigestFinal_ex(u->md5, u->md5_value, &length) == 1;
    }
  }
  if (curl_easy_setopt(easy, CURLOPT_UPLOAD, 1L) != CURLE_OK ||
      curl_easy_setopt(easy, CURLOPT_READFUNCTION, upload_read) != CURLE_OK ||
      curl_easy_setopt(easy, CURLOPT_READDATA, u) != CURLE_OK ||
      curl_easy_setopt(easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t)(end - start)) != CURLE_OK) {
    hl_upload_free(u);
    return NULL;
  }
  return u;
}

void hl_upload_free(hl_upload *u) {
  if (u->md5) EVP_MD_CTX_free(u->md5);
  free(u);
}

int hl_upload_error(const hl_upload *u) { return u->error; }

int hl_upload_md5(const hl_upload *u, uint8_t out[16]) {
  if (!u->md5_done) return -1;
  memcpy(out, u->md5_value, 16);
  return 0;
}

int hl_md5(const uint8_t *data, size_t length, uint8_t out[16]) {
  unsigned int produced = 0;
  return EVP_Digest(data, length, out, &produced, EVP_md5(), NULL) == 1 && produced == 16 ? 0 : -1;
}
