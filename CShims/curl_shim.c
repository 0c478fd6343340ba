// Fixed-type wrappers for curl's variadic functions (Swift cannot call C
// variadics) and small flatteners for structs Swift imports poorly.
#include "CShims.h"

#include <linux/fs.h>
#include <sys/ioctl.h>

#include <fcntl.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>

int hl_fallocate(int fd, int64_t offset, int64_t length) {
  return fallocate(fd, 0, (off_t)offset, (off_t)length);
}

int hl_reflink(int dst, int src) { return ioctl(dst, FICLONE, src); }

int hl_o_direct(void) { return O_DIRECT; }

int hl_rename_noreplace(const char *from, const char *to) {
  return renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE);
}

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void global_init_once(void) {
  // OpenSSL's atexit cleanup can run while another thread still tears down
  // curl handles; skip it (swift-corelibs-foundation hit this as double frees).
  OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, NULL);
  curl_global_init(CURL_GLOBAL_DEFAULT);
}

void hl_global_init(void) { pthread_once(&init_once, global_init_once); }

CURLcode hl_easy_setopt_long(CURL *easy, CURLoption option, long value) {
  return curl_easy_setopt(easy, option, value);
}

CURLcode hl_easy_setopt_off(CURL *easy, CURLoption option, curl_off_t value) {
  return curl_easy_setopt(easy, option, value);
}

CURLcode hl_easy_setopt_str(CURL *easy, CURLoption option, const char *value) {
  return curl_easy_setopt(easy, option, value);
}

CURLcode hl_easy_setopt_ptr(CURL *easy, CURLoption option, void *value) {
  return curl_easy_setopt(easy, option, value);
}

CURLcode hl_easy_getinfo_long(CURL *easy, CURLINFO info, long *out) {
  return curl_easy_getinfo(easy, info, out);
}

CURLcode hl_easy_getinfo_off(CURL *easy, CURLINFO info, curl_off_t *out) {
  return curl_easy_getinfo(easy, info, out);
}

CURLcode hl_easy_getinfo_str(CURL *easy, CURLINFO info, const char **out) {
  return curl_easy_getinfo(easy, info, out);
}

CURLMcode hl_multi_setopt_long(CURLM *multi, CURLMoption option, long value) {
  return curl_multi_setopt(multi, option, value);
}

CURLSHcode hl_share_setopt_long(CURLSH *share, CURLSHoption option, long value) {
  return curl_share_setopt(share, option, value);
}

const char *hl_easy_header(CURL *easy, const char *name) {
  struct curl_header *h = NULL;
  // request -1: the last request of the transfer (after redirects, if any).
  if (curl_easy_header(easy, name, 0, CURLH_HEADER, -1, &h) != CURLHE_OK || !h) return NULL;
  return h->value;
}

int hl_multi_next_done(CURLM *multi, CURL **easy, CURLcode *result) {
  int left = 0;
  CURLMsg *msg;
  while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
    if (msg->msg == CURLMSG_DONE) {
      *easy = msg->easy_handle;
      *result = msg->data.result;
      return 1;
    }
  }
  return 0;
}
