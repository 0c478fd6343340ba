// LD_PRELOAD shim for the disk-full test: once HAUL_TEST_ENOSPC_AFTER bytes
// have gone through pwrite()/pwritev(), every further one fails with ENOSPC, as
// on a filesystem that filled up mid-download (fallocate cannot prevent it on
// filesystems without it, or when something else steals the space first).
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static _Atomic long long budget = -1;

// Takes n bytes from the budget; 0 when they fit, -1 (errno ENOSPC) when not.
static int spend(size_t n) {
  if (budget < 0) {
    const char *v = getenv("HAUL_TEST_ENOSPC_AFTER");
    long long expected = -1;
    atomic_compare_exchange_strong(&budget, &expected, v ? atoll(v) : (long long)1 << 62);
  }
  if (atomic_fetch_sub(&budget, (long long)n) < (long long)n) {
    errno = ENOSPC;
    return -1;
  }
  return 0;
}

static ssize_t limited(ssize_t (*real)(int, const void *, size_t, off_t), int fd, const void *buf,
                       size_t n, off_t off) {
  return spend(n) ? -1 : real(fd, buf, n, off);
}

ssize_t pwritev(int fd, const struct iovec *iov, int count, off_t off) {
  static ssize_t (*real)(int, const struct iovec *, int, off_t);
  if (!real) real = dlsym(RTLD_NEXT, "pwritev");
  size_t n = 0;
  for (int i = 0; i < count; i++) n += iov[i].iov_len;
  return spend(n) ? -1 : real(fd, iov, count, off);
}

ssize_t pwritev64(int fd, const struct iovec *iov, int count, off_t off) {
  static ssize_t (*real)(int, const struct iovec *, int, off_t);
  if (!real) real = dlsym(RTLD_NEXT, "pwritev64");
  size_t n = 0;
  for (int i = 0; i < count; i++) n += iov[i].iov_len;
  return spend(n) ? -1 : real(fd, iov, count, off);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
  static ssize_t (*real)(int, const void *, size_t, off_t);
  if (!real) real = dlsym(RTLD_NEXT, "pwrite");
  return limited(real, fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) {
  static ssize_t (*real)(int, const void *, size_t, off_t);
  if (!real) real = dlsym(RTLD_NEXT, "pwrite64");
  return limited(real, fd, buf, n, off);
}
