/*
 * What the N-API addons share (agents/dns/native/udp.c, agents/logs/native/forward.c,
 * agents/overlay/native/pages.c). Include after defining ADDON_NAME (the prefix of CHECK's
 * message, e.g. "udp addon"); scripts/build-addon.sh puts this directory on the include path.
 */
#ifndef FLOTILLA_NAPI_UTIL_H
#define FLOTILLA_NAPI_UTIL_H
#include <errno.h>
#include <node_api.h>
#include <stdio.h>
#include <string.h>

/* An N-API call that must succeed: otherwise throws "<addon>: <call> failed" and returns NULL. */
#define CHECK(call)                                                                              \
  do {                                                                                           \
    if ((call) != napi_ok) {                                                                     \
      napi_throw_error(env, NULL, ADDON_NAME ": " #call " failed");                              \
      return NULL;                                                                               \
    }                                                                                            \
  } while (0)

/*
 * Throws Error "<what>: <strerror(err)>" with err.code the errno's name (EADDRINUSE, ENOSPC, …),
 * as Node's own system errors carry it. Returns NULL, for `return throw_errno(…)`.
 */
static inline napi_value throw_errno(napi_env env, const char *what, int err) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  const char *name = strerrorname_np(err);
  napi_throw_error(env, name ? name : "EIO", msg);
  return NULL;
}

/* o[k] = v (a stats field). */
static inline void set_num(napi_env env, napi_value o, const char *k, double v) {
  napi_value n;
  napi_create_double(env, v, &n);
  napi_set_named_property(env, o, k, n);
}

#endif
