// A response body kept in memory (manifests, tokens, error documents), up
// to a limit: a registry that sends more fails the request instead of
// growing the process.
#include "CShims.h"

#include <stdlib.h>
#include <string.h>

struct hl_body {
  unsigned char *bytes;
  size_t len, cap, limit;
  int too_large;
};

static size_t write_body(char *data, size_t one, size_t n, void *arg) {
  hl_body *b = arg;
  (void)one;  // always 1 for write callbacks
  if (n > b->limit - b->len) {
    b->too_large = 1;
    return 0;
  }
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n) cap *= 2;
    if (cap > b->limit) cap = b->limit;
    unsigned char *grown = realloc(b->bytes, cap);
    if (!grown) {
      b->too_large = 1;
      return 0;
    }
    b->bytes = grown;
    b->cap = cap;
  }
  memcpy(b->bytes + b->len, data, n);
  b->len += n;
  return n;
}

hl_body *hl_body_new(CURL *easy, size_t limit) {
  hl_body *b = calloc(1, sizeof *b);
  if (!b) return NULL;
  b->limit = limit;
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, write_body);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, b);
  return b;
}

const uint8_t *hl_body_bytes(const hl_body *b, size_t *len) {
  *len = b->len;
  return b->bytes;
}

size_t hl_body_limit(const hl_body *b) { return b->limit; }

int hl_body_too_large(const hl_body *b) { return b->too_large; }

void hl_body_free(hl_body *b) {
  if (!b) return;
  free(b->bytes);
  free(b);
}
