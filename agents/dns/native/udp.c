/*
 * Batched UDP for dnsd (--udp-io batch): one non-blocking socket polled by libuv, drained with
 * recvmmsg into one preallocated arena, answered by ONE JavaScript call per batch, the answers
 * sent with one sendmmsg. Node's dgram costs one recvmsg, one sendmsg, one JS callback and one
 * Buffer per packet; this costs two syscalls and one JS call per batch of up to BATCH packets.
 *
 * JavaScript contract (agents/dns/udp-batch.ts holds the other half):
 *   bind(family 4|6, host, port, rcvbuf, sndbuf) -> handle   (throws Error "<syscall>: <strerror>")
 *   port(handle) -> bound port
 *   start(handle, inArena, inMeta, outArena, outMeta, onBatch)
 *     inArena  Buffer,      BATCH * SLOT bytes: datagram i at i * SLOT
 *     inMeta   Uint32Array, BATCH * IN_STRIDE: [len, flags, port, scope, a0, a1, a2, a3]
 *              (flags bit 0: datagram longer than SLOT, cut; a0 is the IPv4 address, host order;
 *              a0..a3 the IPv6 address as 4 host-order words)
 *     outArena Buffer,      BATCH * SLOT bytes, filled by onBatch
 *     outMeta  Uint32Array, BATCH * 3: [offset in outArena, length, index of the query it answers]
 *     onBatch(n) -> k: n datagrams are in the arena; the first k outMeta rows are sent.
 *   sendTo(handle, buf, port, scope, a0, a1, a2, a3): one answer (one computed later, e.g. forwarded)
 *   peerName(handle, i): the text address of datagram i of the current batch (IPv6 peers)
 *   stats(handle) -> { packets, batches, truncated, sendErrors, dropped, lastError, pollError }
 *   close(handle): stops polling; the fd is closed in libuv's close callback.
 * Nothing is allocated per packet here; the JS side allocates one small Buffer per query (the
 * copy it hands the resolver) and no other object on a cache hit.
 */
#define NAPI_VERSION 8
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <node_api.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#define ADDON_NAME "udp addon"
#include "napi-util.h"

#define BATCH 64
#define SLOT 4096
#define IN_STRIDE 8
#define OUT_STRIDE 3
/* Batches read per readiness before yielding to the rest of the event loop (the poll is
 * level-triggered, so what is left is read on the next turn): 256 datagrams, ~1.5 ms of answers
 * at most before TCP, timers and the etcd watch get their turn. */
#define MAX_BATCHES 4

typedef struct {
  uv_poll_t poll; /* first: the handle's data points back here anyway */
  int fd;
  int family;
  int started;
  int closing;
  int orphan; /* the External was collected before the close callback ran: free there */
  napi_env env;
  napi_ref cb;
  napi_ref bufs[4];
  napi_async_context actx;
  unsigned char *in, *out;
  uint32_t *in_meta, *out_meta;
  struct sockaddr_storage peers[BATCH];
  struct iovec iov[BATCH];
  struct mmsghdr msgs[BATCH];
  struct iovec oiov[BATCH];
  struct mmsghdr omsgs[BATCH];
  double packets, batches, truncated, send_errors, dropped;
  int last_error;
  int poll_error;
} udp_t;

static void finalize(napi_env env, void *data, void *hint);

static udp_t *handle_of(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok || p == NULL) {
    napi_throw_type_error(env, NULL, "udp addon: not a socket handle");
    return NULL;
  }
  return (udp_t *)p;
}

/* The n arguments of a call whose first is a socket handle; NULL (with a JS error) otherwise. */
static udp_t *handle_args(napi_env env, napi_callback_info info, size_t n, napi_value *argv,
                          const char *usage) {
  size_t argc = n;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < n) {
    napi_throw_type_error(env, NULL, usage);
    return NULL;
  }
  return handle_of(env, argv[0]);
}

static void *buffer_data(napi_env env, napi_value v, size_t want) {
  bool ok = false;
  void *data = NULL;
  size_t len = 0;
  napi_typedarray_type type;
  napi_value ab;
  size_t off;
  if (napi_is_typedarray(env, v, &ok) != napi_ok || !ok) return NULL;
  if (napi_get_typedarray_info(env, v, &type, &len, &data, &ab, &off) != napi_ok) return NULL;
  size_t bytes = type == napi_uint32_array ? len * 4 : len;
  return bytes >= want ? data : NULL;
}

/* Peer address of a sockaddr into meta words (port, scope, a0..a3). */
static void peer_words(const struct sockaddr_storage *ss, uint32_t *m) {
  if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
    uint32_t w[4];
    memcpy(w, &s6->sin6_addr, 16);
    m[0] = ntohs(s6->sin6_port);
    m[1] = s6->sin6_scope_id;
    for (int i = 0; i < 4; i++) m[2 + i] = ntohl(w[i]);
  } else {
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
    m[0] = ntohs(s4->sin_port);
    m[1] = 0;
    m[2] = ntohl(s4->sin_addr.s_addr);
    m[3] = m[4] = m[5] = 0;
  }
}

static socklen_t words_peer(int family, const uint32_t *w, struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof *ss);
  if (family == 6) {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    uint32_t a[4];
    for (int i = 0; i < 4; i++) a[i] = htonl(w[2 + i]);
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons((uint16_t)w[0]);
    s6->sin6_scope_id = w[1];
    memcpy(&s6->sin6_addr, a, 16);
    return sizeof *s6;
  }
  struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
  s4->sin_family = AF_INET;
  s4->sin_port = htons((uint16_t)w[0]);
  s4->sin_addr.s_addr = htonl(w[2]);
  return sizeof *s4;
}

/* Waits up to ms for the socket to take more; 1 if writable. */
static int wait_writable(int fd, int ms) {
  struct pollfd p = {.fd = fd, .events = POLLOUT};
  return poll(&p, 1, ms) == 1 && (p.revents & POLLOUT);
}

/*
 * Sends msgs[0..n) with sendmmsg. A message the kernel refuses (bad address, EPERM) is counted
 * and skipped; when the send buffer is full, waits briefly (the loopback/NIC drains it in
 * microseconds), and drops what still does not fit rather than block the loop.
 */
static void send_all(udp_t *u, struct mmsghdr *msgs, unsigned n) {
  unsigned i = 0;
  int waits = 0;
  while (i < n) {
    int r = sendmmsg(u->fd, msgs + i, n - i, MSG_DONTWAIT);
    if (r > 0) {
      i += (unsigned)r;
      continue;
    }
    int e = r < 0 ? errno : EIO;
    if (e == EINTR) continue;
    if ((e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS) && waits < 3) {
      waits++;
      wait_writable(u->fd, 2);
      continue;
    }
    u->last_error = e;
    if (e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS) {
      u->dropped += n - i;
      return;
    }
    u->send_errors++;
    i++; /* the first unsent message failed: skip it */
  }
}

static void on_readable(uv_poll_t *h, int status, int events) {
  udp_t *u = (udp_t *)h->data;
  (void)events;
  if (u->closing) return;
  if (status < 0) {
    /* libuv cannot poll the fd any more (it would report the same error again at once): stop,
     * and say so through stats().pollError, which the JS side logs. */
    u->last_error = -status;
    u->poll_error = -status;
    uv_poll_stop(h);
    return;
  }
  napi_env env = u->env;
  for (int round = 0; round < MAX_BATCHES && !u->closing; round++) {
    for (int i = 0; i < BATCH; i++) {
      u->iov[i].iov_base = u->in + (size_t)i * SLOT;
      u->iov[i].iov_len = SLOT;
      memset(&u->msgs[i].msg_hdr, 0, sizeof u->msgs[i].msg_hdr);
      u->msgs[i].msg_hdr.msg_iov = &u->iov[i];
      u->msgs[i].msg_hdr.msg_iovlen = 1;
      u->msgs[i].msg_hdr.msg_name = &u->peers[i];
      u->msgs[i].msg_hdr.msg_namelen = sizeof u->peers[i];
    }
    int n = recvmmsg(u->fd, u->msgs, BATCH, MSG_DONTWAIT, NULL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) u->last_error = errno;
      return;
    }
    if (n == 0) return;
    u->batches++;
    u->packets += n;
    for (int i = 0; i < n; i++) {
      uint32_t *m = u->in_meta + (size_t)i * IN_STRIDE;
      int cut = (u->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0;
      if (cut) u->truncated++;
      m[0] = u->msgs[i].msg_len > SLOT ? SLOT : u->msgs[i].msg_len;
      m[1] = cut ? 1 : 0;
      peer_words(&u->peers[i], m + 2);
    }
    napi_handle_scope scope;
    if (napi_open_handle_scope(env, &scope) != napi_ok) return;
    napi_value fn, recv, argv[1], result;
    uint32_t k = 0;
    napi_get_reference_value(env, u->cb, &fn);
    napi_get_global(env, &recv);
    napi_create_uint32(env, (uint32_t)n, &argv[0]);
    napi_status st = napi_make_callback(env, u->actx, recv, fn, 1, argv, &result);
    if (st == napi_ok) {
      napi_get_value_uint32(env, result, &k);
    } else {
      bool pending = false;
      napi_is_exception_pending(env, &pending);
      if (pending) {
        napi_value err;
        napi_get_and_clear_last_exception(env, &err);
        napi_fatal_exception(env, err);
      }
    }
    napi_close_handle_scope(env, scope);
    if (u->closing) return;
    if (k > BATCH) k = BATCH;
    unsigned j = 0;
    for (uint32_t a = 0; a < k; a++) {
      const uint32_t *o = u->out_meta + (size_t)a * OUT_STRIDE;
      uint32_t off = o[0], len = o[1], src = o[2];
      if (src >= (uint32_t)n || (size_t)off + len > (size_t)BATCH * SLOT) continue;
      u->oiov[j].iov_base = u->out + off;
      u->oiov[j].iov_len = len;
      memset(&u->omsgs[j].msg_hdr, 0, sizeof u->omsgs[j].msg_hdr);
      u->omsgs[j].msg_hdr.msg_iov = &u->oiov[j];
      u->omsgs[j].msg_hdr.msg_iovlen = 1;
      u->omsgs[j].msg_hdr.msg_name = &u->peers[src];
      u->omsgs[j].msg_hdr.msg_namelen = u->msgs[src].msg_hdr.msg_namelen;
      j++;
    }
    if (j) send_all(u, u->omsgs, j);
    if (n < BATCH) return; /* drained */
  }
}

static napi_value js_bind(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5) {
    napi_throw_type_error(env, NULL, "bind(family, host, port, rcvbuf, sndbuf)");
    return NULL;
  }
  int32_t family, port, rcv, snd;
  char host[INET6_ADDRSTRLEN + 1];
  size_t hl;
  CHECK(napi_get_value_int32(env, argv[0], &family));
  CHECK(napi_get_value_string_utf8(env, argv[1], host, sizeof host, &hl));
  CHECK(napi_get_value_int32(env, argv[2], &port));
  CHECK(napi_get_value_int32(env, argv[3], &rcv));
  CHECK(napi_get_value_int32(env, argv[4], &snd));
  struct sockaddr_storage ss;
  socklen_t sl;
  memset(&ss, 0, sizeof ss);
  if (family == 6) {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons((uint16_t)port);
    if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1) return throw_errno(env, host, EINVAL);
    sl = sizeof *s6;
  } else {
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &s4->sin_addr) != 1) return throw_errno(env, host, EINVAL);
    sl = sizeof *s4;
  }
  int fd = socket(family == 6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  /* As Node's dgram: no SO_REUSEADDR (a second server on the port fails with EADDRINUSE), and an
   * IPv6 socket also takes IPv4-mapped peers (no IPV6_V6ONLY). */
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv) < 0 ||
      setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &snd, sizeof snd) < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "setsockopt", e);
  }
  if (bind(fd, (struct sockaddr *)&ss, sl) < 0) {
    int e = errno;
    close(fd);
    char what[INET6_ADDRSTRLEN + 32];
    snprintf(what, sizeof what, "bind %s:%d", host, port);
    return throw_errno(env, what, e);
  }
  udp_t *u = calloc(1, sizeof *u);
  if (!u) {
    close(fd);
    return throw_errno(env, "calloc", ENOMEM);
  }
  u->fd = fd;
  u->family = family == 6 ? 6 : 4;
  u->env = env;
  napi_value ext;
  if (napi_create_external(env, u, finalize, NULL, &ext) != napi_ok) {
    close(fd);
    free(u);
    napi_throw_error(env, NULL, "udp addon: napi_create_external failed");
    return NULL;
  }
  return ext;
}

static napi_value js_port(napi_env env, napi_callback_info info) {
  napi_value argv[1], out;
  udp_t *u = handle_args(env, info, 1, argv, "port(handle)");
  if (!u) return NULL;
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  if (getsockname(u->fd, (struct sockaddr *)&ss, &sl) < 0) return throw_errno(env, "getsockname", errno);
  uint32_t w[6];
  peer_words(&ss, w);
  CHECK(napi_create_uint32(env, w[0], &out));
  return out;
}

static napi_value js_start(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  udp_t *u = handle_args(env, info, 6, argv, "start(handle, in, inMeta, out, outMeta, cb)");
  if (!u) return NULL;
  if (u->started || u->closing) {
    napi_throw_error(env, NULL, "udp addon: socket already started or closed");
    return NULL;
  }
  u->in = buffer_data(env, argv[1], (size_t)BATCH * SLOT);
  u->in_meta = buffer_data(env, argv[2], (size_t)BATCH * IN_STRIDE * 4);
  u->out = buffer_data(env, argv[3], (size_t)BATCH * SLOT);
  u->out_meta = buffer_data(env, argv[4], (size_t)BATCH * OUT_STRIDE * 4);
  napi_valuetype t;
  CHECK(napi_typeof(env, argv[5], &t));
  if (!u->in || !u->in_meta || !u->out || !u->out_meta || t != napi_function) {
    napi_throw_type_error(env, NULL, "udp addon: start: arenas too small or callback missing");
    return NULL;
  }
  for (int i = 0; i < 4; i++) CHECK(napi_create_reference(env, argv[1 + i], 1, &u->bufs[i]));
  CHECK(napi_create_reference(env, argv[5], 1, &u->cb));
  napi_value res, name;
  CHECK(napi_create_object(env, &res));
  CHECK(napi_create_string_utf8(env, "dnsd:udp-batch", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_async_init(env, res, name, &u->actx));
  uv_loop_t *loop;
  CHECK(napi_get_uv_event_loop(env, &loop));
  int r = uv_poll_init(loop, &u->poll, u->fd);
  if (r != 0) {
    napi_delete_reference(env, u->cb);
    for (int i = 0; i < 4; i++) napi_delete_reference(env, u->bufs[i]);
    napi_async_destroy(env, u->actx);
    return throw_errno(env, "uv_poll_init", -r);
  }
  /* From here the handle is in the loop: close() must uv_close it, even if start fails. */
  u->poll.data = u;
  u->started = 1;
  r = uv_poll_start(&u->poll, UV_READABLE, on_readable);
  if (r != 0) return throw_errno(env, "uv_poll_start", -r);
  return NULL;
}

static napi_value js_send_to(napi_env env, napi_callback_info info) {
  napi_value argv[8];
  udp_t *u = handle_args(env, info, 8, argv, "sendTo(handle, buf, port, scope, a0, a1, a2, a3)");
  if (!u) return NULL;
  if (u->closing) return NULL;
  void *data;
  size_t len;
  CHECK(napi_get_buffer_info(env, argv[1], &data, &len));
  uint32_t w[6];
  for (int i = 0; i < 6; i++) CHECK(napi_get_value_uint32(env, argv[2 + i], &w[i]));
  struct sockaddr_storage ss;
  struct iovec iov = {.iov_base = data, .iov_len = len};
  struct mmsghdr m;
  memset(&m, 0, sizeof m);
  m.msg_hdr.msg_name = &ss;
  m.msg_hdr.msg_namelen = words_peer(u->family, w, &ss);
  m.msg_hdr.msg_iov = &iov;
  m.msg_hdr.msg_iovlen = 1;
  send_all(u, &m, 1);
  return NULL;
}

static napi_value js_peer_name(napi_env env, napi_callback_info info) {
  napi_value argv[2], out;
  udp_t *u = handle_args(env, info, 2, argv, "peerName(handle, i)");
  if (!u) return NULL;
  uint32_t i;
  CHECK(napi_get_value_uint32(env, argv[1], &i));
  if (i >= BATCH) {
    napi_throw_range_error(env, NULL, "udp addon: peerName index out of range");
    return NULL;
  }
  char s[INET6_ADDRSTRLEN] = "";
  const struct sockaddr_storage *ss = &u->peers[i];
  if (ss->ss_family == AF_INET6)
    inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, s, sizeof s);
  else
    inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, s, sizeof s);
  CHECK(napi_create_string_latin1(env, s, NAPI_AUTO_LENGTH, &out));
  return out;
}

static napi_value js_stats(napi_env env, napi_callback_info info) {
  napi_value argv[1], o, e;
  udp_t *u = handle_args(env, info, 1, argv, "stats(handle)");
  if (!u) return NULL;
  CHECK(napi_create_object(env, &o));
  set_num(env, o, "packets", u->packets);
  set_num(env, o, "batches", u->batches);
  set_num(env, o, "truncated", u->truncated);
  set_num(env, o, "sendErrors", u->send_errors);
  set_num(env, o, "dropped", u->dropped);
  CHECK(napi_create_string_utf8(env, u->last_error ? strerror(u->last_error) : "", NAPI_AUTO_LENGTH, &e));
  CHECK(napi_set_named_property(env, o, "lastError", e));
  CHECK(napi_create_string_utf8(env, u->poll_error ? strerror(u->poll_error) : "", NAPI_AUTO_LENGTH, &e));
  CHECK(napi_set_named_property(env, o, "pollError", e));
  return o;
}

static void on_closed(uv_handle_t *h) {
  udp_t *u = (udp_t *)h->data;
  close(u->fd);
  u->fd = -1;
  if (u->orphan) free(u);
}

/* The handle was collected: a socket never started is closed here; a started one is freed once
 * libuv has closed it (a started socket is reachable from its own callback until close()). */
static void finalize(napi_env env, void *data, void *hint) {
  udp_t *u = data;
  (void)env;
  (void)hint;
  if (!u->started) {
    if (u->fd >= 0) close(u->fd);
    free(u);
  } else if (u->fd < 0) {
    free(u);
  } else {
    u->orphan = 1;
  }
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  udp_t *u = handle_args(env, info, 1, argv, "close(handle)");
  if (!u || u->closing) return NULL;
  u->closing = 1;
  if (u->started) {
    napi_delete_reference(env, u->cb);
    for (int i = 0; i < 4; i++) napi_delete_reference(env, u->bufs[i]);
    napi_async_destroy(env, u->actx);
    u->poll.data = u;
    uv_close((uv_handle_t *)&u->poll, on_closed);
  } else {
    close(u->fd);
    u->fd = -1;
  }
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  struct {
    const char *name;
    napi_callback fn;
  } fns[] = {{"bind", js_bind},     {"port", js_port},         {"start", js_start},
             {"sendTo", js_send_to}, {"peerName", js_peer_name}, {"stats", js_stats},
             {"close", js_close}};
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value f;
    CHECK(napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &f));
    CHECK(napi_set_named_property(env, exports, fns[i].name, f));
  }
  napi_value n;
  CHECK(napi_create_uint32(env, BATCH, &n));
  CHECK(napi_set_named_property(env, exports, "BATCH", n));
  CHECK(napi_create_uint32(env, SLOT, &n));
  CHECK(napi_set_named_property(env, exports, "SLOT", n));
  return exports;
}

NAPI_MODULE(dnsd_udp, init)
