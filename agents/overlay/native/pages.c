/*
 * overlayd's start-up pages (agents/overlay/startup-memory.ts holds the other half): drops this
 * process's page-table entries for the clean, read-only file mappings (the node binary's code and
 * read-only data, the shared libraries, addons) so that what only the start-up touched stops
 * counting in RSS. The pages stay in the kernel's page cache, shared with any other process that
 * maps the same file; what overlayd touches again is mapped back from the page cache on its next
 * access (a minor fault, no disk read while the page is cached).
 *
 * JavaScript contract:
 *   releaseFilePages() -> { mappings, bytes, skipped }
 *     mappings: how many mappings were advised MADV_DONTNEED; bytes: their total size (virtual);
 *     skipped: read-only or executable file mappings left alone because they hold anonymous
 *     (copy-on-write) pages, e.g. RELRO data the dynamic linker wrote before making it
 *     read-only: MADV_DONTNEED would discard those writes.
 *     Throws Error "<what>: <strerror>" when /proc/self/smaps cannot be read.
 *
 * Only private mappings named by an absolute path with permissions r--p or r-xp, and no
 * anonymous page, are touched: for those every resident page is the file's own content, so
 * dropping it loses nothing. Writable, shared, anonymous and special ([vdso], [stack], …)
 * mappings are never advised.
 */
#define NAPI_VERSION 8
#define _GNU_SOURCE
#include <errno.h>
#include <node_api.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#define ADDON_NAME "pages addon"
#include "napi-util.h"

typedef struct {
  unsigned long start, end;
  int candidate;
} mapping;

/* A mapping header line of smaps: "start-end perms offset dev inode   path". */
static int parse_header(const char *line, mapping *m) {
  char perms[8];
  int name_at = 0;
  if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %n", &m->start, &m->end, perms, &name_at) != 3 ||
      name_at == 0)
    return 0;
  const char *name = line + name_at;
  size_t len = strcspn(name, "\n");
  static const char deleted[] = " (deleted)";
  int is_file = name[0] == '/' &&
                !(len >= sizeof deleted - 1 &&
                  memcmp(name + len - (sizeof deleted - 1), deleted, sizeof deleted - 1) == 0);
  m->candidate = is_file && (strcmp(perms, "r--p") == 0 || strcmp(perms, "r-xp") == 0);
  return 1;
}

static napi_value release_file_pages(napi_env env, napi_callback_info info) {
  (void)info;
  FILE *f = fopen("/proc/self/smaps", "re");
  if (!f) return throw_errno(env, "open /proc/self/smaps", errno);
  char line[4096];
  mapping cur = {0, 0, 0};
  unsigned long kb;
  double bytes = 0;
  int advised = 0, skipped = 0, failed_errno = 0;
  while (fgets(line, sizeof line, f)) {
    mapping m;
    if (parse_header(line, &m)) {
      cur = m;
      continue;
    }
    if (!cur.candidate || sscanf(line, "Anonymous: %lu kB", &kb) != 1) continue;
    cur.candidate = 0; /* one Anonymous line per mapping */
    if (kb != 0) {
      skipped++;
      continue;
    }
    if (madvise((void *)cur.start, cur.end - cur.start, MADV_DONTNEED) != 0) {
      failed_errno = errno;
      break;
    }
    advised++;
    bytes += (double)(cur.end - cur.start);
  }
  int read_errno = ferror(f) ? errno : 0;
  fclose(f);
  if (failed_errno) return throw_errno(env, "madvise(MADV_DONTNEED)", failed_errno);
  if (read_errno) return throw_errno(env, "read /proc/self/smaps", read_errno);
  napi_value out, v;
  napi_create_object(env, &out);
  napi_create_int32(env, advised, &v);
  napi_set_named_property(env, out, "mappings", v);
  napi_create_double(env, bytes, &v);
  napi_set_named_property(env, out, "bytes", v);
  napi_create_int32(env, skipped, &v);
  napi_set_named_property(env, out, "skipped", v);
  return out;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  if (napi_create_function(env, "releaseFilePages", NAPI_AUTO_LENGTH, release_file_pages, NULL,
                           &fn) != napi_ok ||
      napi_set_named_property(env, exports, "releaseFilePages", fn) != napi_ok)
    return NULL;
  return exports;
}
