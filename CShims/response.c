// The rule that decides whether a response to a ranged GET may be written
// into a blob: pure functions of the status and headers, with no curl and
// no I/O, so the whole table is unit-tested and fuzzed without a server.
// The sink applies it at the first body byte, before anything is stored.
#include "CShims.h"

#include <strings.h>

static int parse_i64(const char **p, int64_t *out) {
  const char *s = *p;
  if (*s < '0' || *s > '9') return -1;
  int64_t v = 0;
  while (*s >= '0' && *s <= '9') {
    int d = *s - '0';
    if (v > (INT64_MAX - d) / 10) return -1;
    v = v * 10 + d;
    s++;
  }
  *p = s;
  *out = v;
  return 0;
}

int hl_parse_content_range(const char *value, int64_t *first, int64_t *last, int64_t *total) {
  if (!value) return -1;
  const char *p = value;
  while (*p == ' ' || *p == '\t') p++;
  if (strncasecmp(p, "bytes", 5) != 0) return -1;
  p += 5;
  if (*p != ' ' && *p != '\t') return -1;
  while (*p == ' ' || *p == '\t') p++;
  if (parse_i64(&p, first) || *p++ != '-' || parse_i64(&p, last) || *p++ != '/') return -1;
  if (*p == '*') {
    *total = -1;
    p++;
  } else if (parse_i64(&p, total)) {
    return -1;
  }
  while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
  if (*p != '\0' || *last < *first) return -1;
  if (*total >= 0 && *last >= *total) return -1;
  return 0;
}

hl_judgement hl_judge_response(long status, const char *content_range, int64_t content_length,
                               hl_range_request request) {
  if (status == 206) {
    // Only the bytes asked for, at the offsets asked for: anything else
    // would put a server's other bytes under the hash frontier.
    int64_t first, last, total;
    if (hl_parse_content_range(content_range, &first, &last, &total) != 0)
      return HL_JUDGED_BAD_CONTENT_RANGE;
    if (first != request.start || last != request.end - 1 || (total >= 0 && total != request.total))
      return HL_JUDGED_BAD_CONTENT_RANGE;
    return HL_JUDGED_RANGE;
  }
  if (status == 200 && request.accept_full) {
    // The server ignored Range and sends the whole file. Its length, when
    // announced, must be the file's.
    if (content_length >= 0 && content_length != request.total) return HL_JUDGED_BAD_LENGTH;
    return HL_JUDGED_WHOLE;
  }
  return HL_JUDGED_BAD_STATUS;
}
