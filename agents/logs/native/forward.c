/*
 * Native forward receiver for logsd's forward input (`logsd agent --forward-io native`).
 *
 * Docker's fluentd driver with fluentd-request-ack=true sends ONE line per Message frame and
 * waits for its ack before the next: the agent's work before the ack is the driver's whole
 * throughput. Here that work is C on Node's own event loop, with no JavaScript per line: the
 * connection is read, the frame is found and checked, appended to the agent's forward journal
 * through a shared mapping of the journal file (so it survives the agent being killed; with
 * `sync` also msync'd), and only then acked. JavaScript gets the journaled bytes in batches (one
 * call per batchMs, default 20, or per 256 KiB) and enriches them into the durable buffer
 * afterwards (agents/logs/inputs/forward-native.ts).
 *
 * Only frames this file can vouch for take that path: a Message frame
 * [tag:str, time:uint|float|EventTime, record:map, option?:map|nil] with no other ext value,
 * whose option's "chunk" (if any) is a str. Everything else that is valid msgpack (Forward,
 * PackedForward, compressed, handshakes, odd time types) is "deferred": the connection stops
 * being read and the frame goes to JavaScript, which stores, acks (write) and resumes it
 * (resumeConn) — or closes it as malformed. A nil frame is a heartbeat and is skipped. Bytes
 * that are not msgpack, or a frame over MAX_FRAME, close the connection and are reported.
 *
 * JavaScript contract:
 *   create(onEvent, batchMs = 20) -> handle
 *     onEvent(0, bytes, journalOffset)  journaled Message frames, in journal order, starting
 *                                       at that offset of the current journal file: every
 *                                       batchMs while frames keep coming (1 ms after the first
 *                                       one after a quiet batchMs), or per 256 KiB
 *     onEvent(1, connId, frame)         a deferred frame; connId is held until resumeConn/closeConn
 *     onEvent(2, connId, peer, reason)  connection closed: malformed input (already closed)
 *     onEvent(3, message)               the journal is full and no new file came, or its sync
 *                                       failed: nothing of it was acked, reading is paused
 *                                       until resume()
 *     onEvent(4, bytes)                 the journal file is full: call setJournal now with a new
 *                                       one that has room for `bytes`
 *   listenTcp(handle, family 4|6, address, port) -> bound port; listenUnix(handle, path)
 *   setJournal(handle, fd, offset, sync, size, zero)  the file Message frames are appended to (JS
 *                                     owns the fd): fallocated to `size` and mapped (`zero`: its
 *                                     bytes from `offset` cleared first); records
 *                                     [u32 LE length][frame] from `offset`
 *   write(handle, connId, bytes)      queue bytes (an ack) on a connection
 *   resumeConn(handle, connId), closeConn(handle, connId)
 *   pause(handle), resume(handle)     stop / restart reading every connection (backpressure)
 *   stats(handle) -> { conns, connsTotal, fast, deferred, heartbeats, malformed, journalBytes,
 *                      deliveries, journalErrors, lastError }
 *   close(handle)
 */
#define NAPI_VERSION 8
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#define ADDON_NAME "forward addon"
#include "napi-util.h"

#define MAX_FRAME (64u << 20)
#define READ_MIN 65536
#define DELIVER_BYTES (256u << 10)
#define DELIVER_MS_DEFAULT 20
#define OUT_HIGH (1u << 20)
#define MAX_LISTENERS 4

typedef struct rx rx_t;
typedef struct conn conn_t;

struct conn {
  uv_poll_t poll;
  rx_t *rx;
  conn_t *next;
  int fd;
  uint32_t id;
  int held;    /* a deferred frame is with JavaScript */
  int eof;     /* the peer closed its side */
  int closing; /* uv_close called: gone at its callback */
  int events;  /* what poll currently waits for */
  unsigned char *in;
  size_t in_start, in_len, in_cap;
  /* Scan of the frame starting at in_start: how far, and how many values are still open. */
  size_t scan_pos;
  uint64_t scan_pending;
  uint32_t scan_ext;
  unsigned char *out;
  size_t out_len, out_cap;
  char peer[64];
};

typedef struct {
  uv_poll_t poll;
  rx_t *rx;
  int fd;
  int unix_sock;
} listener_t;

struct rx {
  napi_env env;
  napi_ref cb;
  napi_async_context actx;
  uv_loop_t *loop;
  uv_timer_t deliver_timer;
  uv_timer_t kick_timer;
  int timers_init;
  int closing;
  int paused;
  int jfd;
  int jsync;
  uint64_t joff;
  unsigned char *jmap; /* the journal file, mapped shared: a record is a memcpy, not a write(2) */
  size_t jcap;
  uint32_t *runlens; /* frame lengths of the run being built */
  size_t runlens_n, runlens_cap;
  size_t run_bytes; /* journal bytes the run will take (4 + length per frame) */
  uint64_t arena_off; /* journal offset of arena[0] */
  unsigned char *arena;
  size_t arena_len, arena_cap;
  unsigned char *acks; /* acks of the run being written, committed once it is journaled */
  size_t acks_len, acks_cap;
  listener_t listeners[MAX_LISTENERS];
  int nlisteners;
  conn_t *conns;
  uint32_t next_id;
  double conns_open, conns_total, fast, deferred, heartbeats, malformed, journal_bytes,
      deliveries, journal_errors;
  int last_error;
  /* A steady stream goes to JavaScript every deliver_ms (per-batch costs are paid per ~that
     many ms of lines); a frame after a quiet spell of as long, after 1 ms. */
  uint64_t deliver_ms;
  uint64_t last_deliver; /* uv_now of the last delivery */
  int in_deliver;
  int refs; /* outstanding uv handles + 1 for the JS object */
};

static void process(conn_t *c);
static void update_poll(conn_t *c);
static void close_conn(conn_t *c);
static int flush_out(conn_t *c);
static void on_conn(uv_poll_t *h, int status, int events);

static int grow(unsigned char **buf, size_t *cap, size_t need) {
  if (need <= *cap) return 0;
  size_t n = *cap ? *cap : 4096;
  while (n < need) n *= 2;
  unsigned char *p = realloc(*buf, n);
  if (!p) return -1;
  *buf = p;
  *cap = n;
  return 0;
}

static void rx_unref(rx_t *rx) {
  if (--rx->refs == 0) {
    free(rx->arena);
    free(rx->acks);
    free(rx->runlens);
    free(rx);
  }
}

/* ---- msgpack scanning ------------------------------------------------------------------ */

static uint64_t be(const unsigned char *p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; i++) v = (v << 8) | p[i];
  return v;
}

/*
 * Advances a scan of one top-level value over buf[*pos, end): returns 1 when complete (*pos at
 * its end), 0 when more bytes are needed (*pos at the first value not yet whole), -1 on a byte
 * that is not msgpack. *pending: values still to read. *ext: ext values seen.
 */
static int scan(const unsigned char *buf, size_t end, size_t *pos, uint64_t *pending,
                uint32_t *ext) {
  size_t p = *pos;
  uint64_t open = *pending;
  while (open > 0) {
    if (p >= end) break;
    unsigned b = buf[p];
    uint64_t children = 0, header = 1, body = 0;
    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
    } else if (b <= 0x8f) {
      children = (uint64_t)(b & 0x0f) * 2;
    } else if (b <= 0x9f) {
      children = b & 0x0f;
    } else if (b <= 0xbf) {
      body = b & 0x1f;
    } else {
      int lb = 0, fixed = 0, isext = 0;
      switch (b) {
      case 0xc4: case 0xd9: lb = 1; break;
      case 0xc5: case 0xda: case 0xdc: case 0xde: lb = 2; break;
      case 0xc6: case 0xdb: case 0xdd: case 0xdf: lb = 4; break;
      case 0xc7: lb = 1; isext = 1; break;
      case 0xc8: lb = 2; isext = 1; break;
      case 0xc9: lb = 4; isext = 1; break;
      case 0xcc: case 0xd0: fixed = 1; break;
      case 0xcd: case 0xd1: fixed = 2; break;
      case 0xca: case 0xce: case 0xd2: fixed = 4; break;
      case 0xcb: case 0xcf: case 0xd3: fixed = 8; break;
      case 0xd4: fixed = 2; isext = 1; break;
      case 0xd5: fixed = 3; isext = 1; break;
      case 0xd6: fixed = 5; isext = 1; break;
      case 0xd7: fixed = 9; isext = 1; break;
      case 0xd8: fixed = 17; isext = 1; break;
      default: return -1; /* 0xc1 */
      }
      if (lb) {
        if (p + 1 + lb > end) break;
        uint64_t n = be(buf + p + 1, lb);
        header = 1 + lb;
        if (b == 0xdc || b == 0xdd) children = n;
        else if (b == 0xde || b == 0xdf) children = n * 2;
        else body = n + (isext ? 1 : 0);
      } else {
        body = fixed;
      }
      if (isext) (*ext)++;
    }
    if (p + header + body > end) break;
    p += header + body;
    open += children - 1;
  }
  *pos = p;
  *pending = open;
  return open == 0 ? 1 : 0;
}

/* End of the (whole, already scanned) value at p. */
static size_t skip(const unsigned char *buf, size_t end, size_t p) {
  uint64_t open = 1;
  uint32_t ext = 0;
  scan(buf, end, &p, &open, &ext);
  return p;
}

static int str_at(const unsigned char *f, size_t n, size_t p, size_t *s, size_t *len) {
  if (p >= n) return 0;
  unsigned b = f[p];
  if (b >= 0xa0 && b <= 0xbf) { *s = p + 1; *len = b & 0x1f; }
  else if (b == 0xd9 && p + 2 <= n) { *s = p + 2; *len = f[p + 1]; }
  else if (b == 0xda && p + 3 <= n) { *s = p + 3; *len = (size_t)be(f + p + 1, 2); }
  else if (b == 0xdb && p + 5 <= n) { *s = p + 5; *len = (size_t)be(f + p + 1, 4); }
  else return 0;
  return *s + *len <= n;
}

enum { DEFER = 0, FAST = 1, HEARTBEAT = 2 };

/*
 * A whole frame f[0, n) with `ext` ext values: FAST for a Message frame the JavaScript decoder
 * accepts as it is (see the top of this file), *chunk and *clen its chunk (clen 0: none).
 */
static int classify(const unsigned char *f, size_t n, uint32_t ext, size_t *chunk, size_t *clen) {
  *clen = 0;
  if (f[0] == 0xc0 && n == 1) return HEARTBEAT;
  if (f[0] != 0x93 && f[0] != 0x94) return DEFER;
  int items = f[0] & 0x0f;
  size_t p = 1, s, len;
  if (!str_at(f, n, p, &s, &len)) return DEFER;
  if (len == 4 && (!memcmp(f + s, "HELO", 4) || !memcmp(f + s, "PING", 4) ||
                   !memcmp(f + s, "PONG", 4)))
    return DEFER;
  p = s + len;
  /* time */
  unsigned b = f[p];
  uint32_t time_ext = 0;
  if (b <= 0x7f || b == 0xcc || b == 0xcd || b == 0xce || b == 0xcf) {
  } else if (b == 0xd0 || b == 0xd1 || b == 0xd2 || b == 0xd3) {
    if (f[p + 1] & 0x80) return DEFER; /* negative */
  } else if (b == 0xcb) {
    uint64_t u = be(f + p + 1, 8);
    double d;
    memcpy(&d, &u, 8);
    if (!isfinite(d) || d < 0) return DEFER;
  } else if (b == 0xca) {
    uint32_t u = (uint32_t)be(f + p + 1, 4);
    float d;
    memcpy(&d, &u, 4);
    if (!isfinite(d) || d < 0) return DEFER;
  } else if (b == 0xd7 && f[p + 1] == 0) {
    time_ext = 1;
  } else if (b == 0xc7 && f[p + 1] == 8 && f[p + 2] == 0) {
    time_ext = 1;
  } else {
    return DEFER;
  }
  if (ext != time_ext) return DEFER;
  p = skip(f, n, p);
  /* record */
  b = f[p];
  if (!((b >= 0x80 && b <= 0x8f) || b == 0xde || b == 0xdf)) return DEFER;
  p = skip(f, n, p);
  if (items == 3) return p == n ? FAST : DEFER;
  /* option */
  b = f[p];
  if (b == 0xc0) return p + 1 == n ? FAST : DEFER;
  uint64_t keys;
  if (b >= 0x80 && b <= 0x8f) { keys = b & 0x0f; p += 1; }
  else if (b == 0xde) { keys = be(f + p + 1, 2); p += 3; }
  else if (b == 0xdf) { keys = be(f + p + 1, 4); p += 5; }
  else return DEFER;
  for (uint64_t k = 0; k < keys; k++) {
    if (!str_at(f, n, p, &s, &len)) return DEFER;
    p = s + len;
    if (len == 5 && !memcmp(f + s, "chunk", 5)) {
      size_t cs, cl;
      if (!str_at(f, n, p, &cs, &cl)) return DEFER;
      if (cl == 0 || cl > 0xffff) return DEFER;
      *chunk = cs;
      *clen = cl;
    }
    p = skip(f, n, p);
  }
  return p == n ? FAST : DEFER;
}

/* ---- JavaScript calls ------------------------------------------------------------------ */

static void call_js(rx_t *rx, size_t argc, napi_value *argv) {
  napi_env env = rx->env;
  napi_value fn, recv, result;
  napi_get_reference_value(env, rx->cb, &fn);
  napi_get_global(env, &recv);
  rx->in_deliver++;
  napi_status st = napi_make_callback(env, rx->actx, recv, fn, argc, argv, &result);
  rx->in_deliver--;
  if (st != napi_ok) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) {
      napi_value err;
      napi_get_and_clear_last_exception(env, &err);
      napi_fatal_exception(env, err);
    }
  }
}

/* Hands the journaled bytes to JavaScript. */
static void deliver(rx_t *rx) {
  if (rx->closing || rx->arena_len == 0) return;
  uv_timer_stop(&rx->deliver_timer);
  napi_env env = rx->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value argv[3];
  void *data;
  size_t len = rx->arena_len;
  uint64_t off = rx->arena_off;
  rx->arena_len = 0;
  rx->arena_off = rx->joff;
  rx->deliveries++;
  rx->last_deliver = uv_now(rx->loop);
  napi_create_uint32(env, 0, &argv[0]);
  if (napi_create_buffer_copy(env, len, rx->arena, &data, &argv[1]) == napi_ok) {
    napi_create_double(env, (double)off, &argv[2]);
    call_js(rx, 3, argv);
  }
  napi_close_handle_scope(env, scope);
}

static void on_deliver_timer(uv_timer_t *t) { deliver((rx_t *)t->data); }

static void emit_deferred(conn_t *c, const unsigned char *f, size_t n) {
  rx_t *rx = c->rx;
  deliver(rx); /* what came before it first */
  if (rx->closing) return;
  napi_env env = rx->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value argv[3];
  void *data;
  napi_create_uint32(env, 1, &argv[0]);
  napi_create_uint32(env, c->id, &argv[1]);
  if (napi_create_buffer_copy(env, n, f, &data, &argv[2]) == napi_ok) call_js(rx, 3, argv);
  napi_close_handle_scope(env, scope);
}

static void emit_malformed(conn_t *c, const char *reason) {
  rx_t *rx = c->rx;
  rx->malformed++;
  uint32_t id = c->id;
  char peer[64];
  memcpy(peer, c->peer, sizeof peer);
  if (flush_out(c) == 0) close_conn(c); /* the acks of what came before it, best effort */
  deliver(rx);
  if (rx->closing) return;
  napi_env env = rx->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value argv[4];
  napi_create_uint32(env, 2, &argv[0]);
  napi_create_uint32(env, id, &argv[1]);
  napi_create_string_utf8(env, peer, NAPI_AUTO_LENGTH, &argv[2]);
  napi_create_string_utf8(env, reason, NAPI_AUTO_LENGTH, &argv[3]);
  call_js(rx, 4, argv);
  napi_close_handle_scope(env, scope);
}

static void emit_journal_error(rx_t *rx, int err) {
  rx->journal_errors++;
  rx->last_error = err;
  rx->paused = 1;
  for (conn_t *c = rx->conns; c; c = c->next) update_poll(c);
  deliver(rx);
  if (rx->closing) return;
  napi_env env = rx->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value argv[2];
  char msg[160];
  snprintf(msg, sizeof msg, "forward journal write: %s", strerror(err));
  napi_create_uint32(env, 3, &argv[0]);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &argv[1]);
  call_js(rx, 2, argv);
  napi_close_handle_scope(env, scope);
}

/* ---- connections ----------------------------------------------------------------------- */

static void on_conn_closed(uv_handle_t *h) {
  conn_t *c = (conn_t *)h->data;
  rx_t *rx = c->rx;
  close(c->fd);
  free(c->in);
  free(c->out);
  free(c);
  rx_unref(rx);
}

static void close_conn(conn_t *c) {
  if (c->closing) return;
  c->closing = 1;
  rx_t *rx = c->rx;
  for (conn_t **pp = &rx->conns; *pp; pp = &(*pp)->next)
    if (*pp == c) {
      *pp = c->next;
      break;
    }
  rx->conns_open--;
  uv_close((uv_handle_t *)&c->poll, on_conn_closed);
}

static conn_t *find_conn(rx_t *rx, uint32_t id) {
  for (conn_t *c = rx->conns; c; c = c->next)
    if (c->id == id) return c;
  return NULL;
}

/* Writes what is queued; 0 ok (maybe some left, then polled for writable), -1 conn closed. */
static int flush_out(conn_t *c) {
  while (c->out_len > 0) {
    ssize_t w = write(c->fd, c->out, c->out_len);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      close_conn(c);
      return -1;
    }
    memmove(c->out, c->out + w, c->out_len - (size_t)w);
    c->out_len -= (size_t)w;
  }
  return 0;
}

static void update_poll(conn_t *c) {
  if (c->closing) return;
  int ev = 0;
  if (!c->held && !c->eof && !c->rx->paused && c->out_len < OUT_HIGH) ev |= UV_READABLE;
  if (c->out_len > 0) ev |= UV_WRITABLE;
  if (ev == c->events) return;
  c->events = ev;
  if (ev) uv_poll_start(&c->poll, ev, on_conn);
  else uv_poll_stop(&c->poll);
}

static int queue_out(conn_t *c, const unsigned char *b, size_t n) {
  if (grow(&c->out, &c->out_cap, c->out_len + n)) return -1;
  memcpy(c->out + c->out_len, b, n);
  c->out_len += n;
  return 0;
}

static int add_ack(rx_t *rx, const unsigned char *chunk, size_t n) {
  if (grow(&rx->acks, &rx->acks_cap, rx->acks_len + 8 + n)) return -1;
  unsigned char *a = rx->acks + rx->acks_len;
  size_t h = 0;
  a[h++] = 0x81;
  a[h++] = 0xa3;
  a[h++] = 'a';
  a[h++] = 'c';
  a[h++] = 'k';
  if (n < 32) a[h++] = (unsigned char)(0xa0 | n);
  else if (n < 256) { a[h++] = 0xd9; a[h++] = (unsigned char)n; }
  else { a[h++] = 0xda; a[h++] = (unsigned char)(n >> 8); a[h++] = (unsigned char)n; }
  memcpy(a + h, chunk, n);
  rx->acks_len += h + n;
  return 0;
}

/*
 * Journals the run c->in[c->in_start, end) (whole fast frames, their lengths in rx->runlens) as
 * records [u32 little-endian length][frame], each length stored after its frame (a kill in
 * between leaves a 0, where a reader stops), then commits their acks. 0 on success; -1 when the
 * sync failed (nothing acked).
 */
static int commit_run(conn_t *c, size_t end) {
  rx_t *rx = c->rx;
  if (end == c->in_start) return 0;
  const unsigned char *p = c->in + c->in_start;
  uint64_t start = rx->joff;
  for (size_t i = 0; i < rx->runlens_n; i++) {
    uint32_t len = rx->runlens[i];
    memcpy(rx->jmap + rx->joff + 4, p, len);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    unsigned char le[4] = {(unsigned char)len, (unsigned char)(len >> 8), (unsigned char)(len >> 16),
                           (unsigned char)(len >> 24)};
    memcpy(rx->jmap + rx->joff, le, 4);
    rx->joff += 4 + (uint64_t)len;
    p += len;
  }
  rx->runlens_n = 0;
  rx->run_bytes = 0;
  size_t total = (size_t)(rx->joff - start);
  if (rx->jsync) {
    long pg = sysconf(_SC_PAGESIZE);
    uint64_t from = start - start % (uint64_t)pg;
    if (msync(rx->jmap + from, (size_t)(rx->joff - from), MS_SYNC) != 0) {
      rx->acks_len = 0;
      c->in_start = end;
      c->scan_pos = end;
      c->scan_pending = 1;
      c->scan_ext = 0;
      emit_journal_error(rx, errno);
      return -1;
    }
  }
  if (rx->arena_len == 0) rx->arena_off = start;
  rx->journal_bytes += (double)total;
  if (grow(&rx->arena, &rx->arena_cap, rx->arena_len + total) == 0) {
    memcpy(rx->arena + rx->arena_len, rx->jmap + start, total);
    rx->arena_len += total;
  }
  if (rx->acks_len) {
    if (queue_out(c, rx->acks, rx->acks_len) != 0) {
      rx->acks_len = 0;
      close_conn(c); /* out of memory: the sender resends, the chunk dedup drops the copy */
      return -1;
    }
    rx->acks_len = 0;
  }
  c->in_start = end;
  c->scan_pos = end;
  c->scan_pending = 1;
  c->scan_ext = 0;
  if (rx->arena_len >= DELIVER_BYTES) deliver(rx);
  else if (!uv_is_active((uv_handle_t *)&rx->deliver_timer)) {
    uint64_t quiet = uv_now(rx->loop) - rx->last_deliver;
    uv_timer_start(&rx->deliver_timer, on_deliver_timer, quiet >= rx->deliver_ms ? 1 : rx->deliver_ms,
                   0);
  }
  return 0;
}

/* Asks JavaScript (synchronously) for a journal file with room for `need` more bytes. */
static void request_roll(rx_t *rx, size_t need) {
  if (rx->closing) return;
  napi_env env = rx->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value argv[2];
  napi_create_uint32(env, 4, &argv[0]);
  napi_create_double(env, (double)need, &argv[1]);
  call_js(rx, 2, argv);
  napi_close_handle_scope(env, scope);
}

/* Parses and handles the whole frames buffered on c, as far as it may. */
static void process(conn_t *c) {
  rx_t *rx = c->rx;
  size_t run_end = c->in_start; /* end of the fast frames not yet journaled */
  rx->runlens_n = 0;
  rx->run_bytes = 0;
  rx->acks_len = 0;
  while (!c->closing && !c->held && !rx->paused) {
    size_t fs = run_end;
    if (c->scan_pos < fs) {
      c->scan_pos = fs;
      c->scan_pending = 1;
      c->scan_ext = 0;
    }
    if (fs >= c->in_len) break;
    int r = scan(c->in, c->in_len, &c->scan_pos, &c->scan_pending, &c->scan_ext);
    if (r < 0) {
      if (commit_run(c, run_end) != 0) return;
      emit_malformed(c, "invalid msgpack byte 0xc1");
      return;
    }
    if (r == 0) {
      if (c->in_len - fs > MAX_FRAME) {
        if (commit_run(c, run_end) != 0) return;
        emit_malformed(c, "frame larger than 64 MiB");
        return;
      }
      break;
    }
    size_t fe = c->scan_pos;
    size_t cs = 0, cl = 0;
    int kind = classify(c->in + fs, fe - fs, c->scan_ext, &cs, &cl);
    c->scan_pending = 1;
    c->scan_ext = 0;
    if (kind == FAST) {
      size_t need = 4 + (fe - fs);
      if (rx->joff + rx->run_bytes + need > rx->jcap) {
        /* The journal file is full: what fits first, then a new file from JavaScript. */
        if (commit_run(c, run_end) != 0) return;
        run_end = c->in_start;
        request_roll(rx, need);
        if (c->closing || rx->closing) return;
        if (rx->joff + need > rx->jcap) {
          c->scan_pos = c->in_start;
          c->scan_pending = 1;
          c->scan_ext = 0;
          emit_journal_error(rx, ENOSPC);
          return;
        }
      }
      if (rx->runlens_n == rx->runlens_cap) {
        size_t n = rx->runlens_cap ? rx->runlens_cap * 2 : 64;
        uint32_t *r = realloc(rx->runlens, n * sizeof *r);
        if (!r) {
          close_conn(c);
          return;
        }
        rx->runlens = r;
        rx->runlens_cap = n;
      }
      rx->runlens[rx->runlens_n++] = (uint32_t)(fe - fs);
      rx->run_bytes += need;
      rx->fast++;
      if (cl && add_ack(rx, c->in + fs + cs, cl) != 0) {
        close_conn(c);
        return;
      }
      run_end = fe;
      continue;
    }
    if (commit_run(c, run_end) != 0) return;
    c->in_start = fe;
    run_end = fe;
    c->scan_pos = fe;
    if (kind == HEARTBEAT) {
      rx->heartbeats++;
      continue;
    }
    rx->deferred++;
    c->held = 1;
    update_poll(c);
    emit_deferred(c, c->in + fs, fe - fs);
    return;
  }
  if (!c->closing) {
    if (commit_run(c, run_end) != 0) return;
  }
  if (c->closing) return;
  if (c->in_start == c->in_len) {
    c->in_start = c->in_len = c->scan_pos = 0;
  }
  if (flush_out(c) != 0) return;
  if (c->eof && !c->held && c->out_len == 0) {
    close_conn(c);
    return;
  }
  update_poll(c);
}

static void on_conn(uv_poll_t *h, int status, int events) {
  conn_t *c = (conn_t *)h->data;
  rx_t *rx = c->rx;
  if (c->closing || rx->closing) return;
  if (status < 0) {
    close_conn(c);
    return;
  }
  if (events & UV_WRITABLE) {
    if (flush_out(c) != 0) return;
  }
  if ((events & UV_READABLE) && !c->held && !rx->paused) {
    /* Compact, then read what is there (one read is the common case: the driver waits). */
    if (c->in_start > 0 && c->in_start == c->in_len) c->in_start = c->in_len = c->scan_pos = 0;
    if (c->in_start > 0 && c->in_start > c->in_cap / 2) {
      memmove(c->in, c->in + c->in_start, c->in_len - c->in_start);
      c->in_len -= c->in_start;
      c->scan_pos -= c->in_start;
      c->in_start = 0;
    }
    for (int i = 0; i < 16; i++) {
      if (grow(&c->in, &c->in_cap, c->in_len + READ_MIN) != 0) {
        close_conn(c);
        return;
      }
      size_t space = c->in_cap - c->in_len;
      ssize_t n = read(c->fd, c->in + c->in_len, space);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) c->eof = 1;
        break;
      }
      if (n == 0) {
        c->eof = 1;
        break;
      }
      c->in_len += (size_t)n;
      if ((size_t)n < space) break;
    }
  }
  process(c);
}

static void on_accept(uv_poll_t *h, int status, int events) {
  listener_t *l = (listener_t *)h->data;
  rx_t *rx = l->rx;
  (void)events;
  if (status < 0 || rx->closing) return;
  for (;;) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR) continue;
      return; /* EAGAIN, or EMFILE & co: tried again on the next readiness */
    }
    conn_t *c = calloc(1, sizeof *c);
    if (!c) {
      close(fd);
      continue;
    }
    c->rx = rx;
    c->fd = fd;
    c->id = ++rx->next_id;
    c->scan_pending = 1;
    if (l->unix_sock) {
      snprintf(c->peer, sizeof c->peer, "unix");
    } else {
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      char a[INET6_ADDRSTRLEN] = "";
      int port = 0;
      if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof a);
        port = ntohs(s6->sin6_port);
      } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &s4->sin_addr, a, sizeof a);
        port = ntohs(s4->sin_port);
      }
      snprintf(c->peer, sizeof c->peer, "%s:%d", a, port);
    }
    if (uv_poll_init(rx->loop, &c->poll, fd) != 0) {
      close(fd);
      free(c);
      continue;
    }
    c->poll.data = c;
    rx->refs++;
    c->next = rx->conns;
    rx->conns = c;
    rx->conns_open++;
    rx->conns_total++;
    c->events = UV_READABLE;
    if (rx->paused) c->events = 0;
    else uv_poll_start(&c->poll, UV_READABLE, on_conn);
  }
}

/* Processes every connection with buffered bytes it may handle now (after resume/resumeConn). */
static void on_kick(uv_timer_t *t) {
  rx_t *rx = (rx_t *)t->data;
  if (rx->closing) return;
  conn_t *c = rx->conns;
  while (c) {
    conn_t *next = c->next;
    if (!c->held && !rx->paused) process(c);
    c = next;
  }
}

static void kick(rx_t *rx) {
  if (!uv_is_active((uv_handle_t *)&rx->kick_timer))
    uv_timer_start(&rx->kick_timer, on_kick, 0, 0);
}

/* ---- JavaScript API -------------------------------------------------------------------- */

static rx_t *rx_arg(napi_env env, napi_value v) {
  rx_t *rx = NULL;
  if (napi_get_value_external(env, v, (void **)&rx) != napi_ok || !rx) {
    napi_throw_type_error(env, NULL, "forward addon: not a receiver handle");
    return NULL;
  }
  if (rx->closing) {
    napi_throw_error(env, NULL, "forward addon: receiver closed");
    return NULL;
  }
  return rx;
}

/* The call's first n arguments (a TypeError naming `usage` when fewer), the first a handle. */
static rx_t *rx_args(napi_env env, napi_callback_info info, size_t n, napi_value *argv,
                     const char *usage) {
  size_t argc = n;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < n) {
    napi_throw_type_error(env, NULL, usage);
    return NULL;
  }
  return rx_arg(env, argv[0]);
}

static void on_timer_closed(uv_handle_t *h) { rx_unref((rx_t *)h->data); }

static void finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  rx_unref((rx_t *)data);
}

static napi_value js_create(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], ext, res, name;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  napi_valuetype t;
  if (argc < 1 || napi_typeof(env, argv[0], &t) != napi_ok || t != napi_function) {
    napi_throw_type_error(env, NULL, "create(onEvent, batchMs?)");
    return NULL;
  }
  uint32_t batch_ms = DELIVER_MS_DEFAULT;
  if (argc >= 2 && napi_typeof(env, argv[1], &t) == napi_ok && t != napi_undefined &&
      (napi_get_value_uint32(env, argv[1], &batch_ms) != napi_ok || batch_ms < 1 ||
       batch_ms > 1000)) {
    napi_throw_range_error(env, NULL, "create: batchMs must be 1 to 1000");
    return NULL;
  }
  rx_t *rx = calloc(1, sizeof *rx);
  if (!rx) return throw_errno(env, "calloc", ENOMEM);
  rx->env = env;
  rx->deliver_ms = batch_ms;
  rx->jfd = -1;
  rx->refs = 1;
  CHECK(napi_get_uv_event_loop(env, &rx->loop));
  CHECK(napi_create_reference(env, argv[0], 1, &rx->cb));
  CHECK(napi_create_object(env, &res));
  CHECK(napi_create_string_utf8(env, "logsd:forward-native", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_async_init(env, res, name, &rx->actx));
  uv_timer_init(rx->loop, &rx->deliver_timer);
  uv_timer_init(rx->loop, &rx->kick_timer);
  rx->deliver_timer.data = rx;
  rx->kick_timer.data = rx;
  uv_unref((uv_handle_t *)&rx->deliver_timer);
  uv_unref((uv_handle_t *)&rx->kick_timer);
  rx->timers_init = 1;
  rx->refs += 2;
  CHECK(napi_create_external(env, rx, finalize, NULL, &ext));
  return ext;
}

/* 0 ok; -1 with a JavaScript error thrown (the fd is closed). */
static int add_listener(napi_env env, rx_t *rx, int fd, int unix_sock) {
  if (rx->nlisteners >= MAX_LISTENERS) {
    close(fd);
    napi_throw_error(env, NULL, "forward addon: too many listeners");
    return -1;
  }
  listener_t *l = &rx->listeners[rx->nlisteners];
  l->rx = rx;
  l->fd = fd;
  l->unix_sock = unix_sock;
  int r = uv_poll_init(rx->loop, &l->poll, fd);
  if (r != 0) {
    close(fd);
    throw_errno(env, "uv_poll_init", -r);
    return -1;
  }
  l->poll.data = l;
  rx->nlisteners++;
  rx->refs++;
  uv_poll_start(&l->poll, UV_READABLE, on_accept);
  return 0;
}

static napi_value js_listen_tcp(napi_env env, napi_callback_info info) {
  napi_value argv[4], out;
  rx_t *rx = rx_args(env, info, 4, argv, "listenTcp(handle, family, address, port)");
  if (!rx) return NULL;
  int32_t family, port;
  char host[INET6_ADDRSTRLEN + 1];
  size_t hl;
  CHECK(napi_get_value_int32(env, argv[1], &family));
  CHECK(napi_get_value_string_utf8(env, argv[2], host, sizeof host, &hl));
  CHECK(napi_get_value_int32(env, argv[3], &port));
  struct sockaddr_storage ss;
  socklen_t sl;
  memset(&ss, 0, sizeof ss);
  if (family == 6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)port);
    if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1) return throw_errno(env, host, EINVAL);
    sl = sizeof *a;
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &a->sin_addr) != 1) return throw_errno(env, host, EINVAL);
    sl = sizeof *a;
  }
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (family == 6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, 511) != 0) {
    int e = errno;
    close(fd);
    char what[96];
    snprintf(what, sizeof what, "listen %s:%d", host, port);
    return throw_errno(env, what, e);
  }
  sl = sizeof ss;
  getsockname(fd, (struct sockaddr *)&ss, &sl);
  int bound = ntohs(family == 6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                : ((struct sockaddr_in *)&ss)->sin_port);
  if (add_listener(env, rx, fd, 0) != 0) return NULL;
  CHECK(napi_create_int32(env, bound, &out));
  return out;
}

static napi_value js_listen_unix(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  rx_t *rx = rx_args(env, info, 2, argv, "listenUnix(handle, path)");
  if (!rx) return NULL;
  struct sockaddr_un a;
  memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  size_t pl;
  CHECK(napi_get_value_string_utf8(env, argv[1], a.sun_path, sizeof a.sun_path, &pl));
  if (pl >= sizeof a.sun_path - 1) return throw_errno(env, "unix socket path", ENAMETOOLONG);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 511) != 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, a.sun_path, e);
  }
  if (add_listener(env, rx, fd, 1) != 0) return NULL;
  return NULL;
}

static napi_value js_set_journal(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  rx_t *rx = rx_args(env, info, 6, argv, "setJournal(handle, fd, offset, sync, size, zero)");
  if (!rx) return NULL;
  int32_t fd;
  double off, size;
  bool sync;
  CHECK(napi_get_value_int32(env, argv[1], &fd));
  CHECK(napi_get_value_double(env, argv[2], &off));
  CHECK(napi_get_value_bool(env, argv[3], &sync));
  CHECK(napi_get_value_double(env, argv[4], &size));
  bool zero;
  CHECK(napi_get_value_bool(env, argv[5], &zero));
  if (size < off + 4 || size > (double)(1ull << 34)) {
    napi_throw_range_error(env, NULL, "setJournal: size must hold the offset, at most 16 GiB");
    return NULL;
  }
  deliver(rx); /* bytes of the old file go out with its offsets */
  /* Blocks allocated up front: a write through the mapping can never hit a full disk (SIGBUS). */
  int r = posix_fallocate(fd, 0, (off_t)size);
  if (r != 0) return throw_errno(env, "forward journal fallocate", r);
  void *m = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (m == MAP_FAILED) return throw_errno(env, "forward journal mmap", errno);
  /* No readahead on a write fault: it filled the page cache with pages of the (unwritten,
     zero) file far ahead of the appends, most of them dropped unused when the file rolls. */
  madvise(m, (size_t)size, MADV_RANDOM);
  if (rx->jmap) munmap(rx->jmap, rx->jcap);
  rx->jmap = m;
  rx->jcap = (size_t)size;
  /* A file used again (renamed, on a full disk): its old records must not read as new ones. */
  if (zero) memset(rx->jmap + (size_t)off, 0, rx->jcap - (size_t)off);
  rx->jfd = fd;
  rx->joff = (uint64_t)off;
  rx->arena_off = rx->joff;
  rx->jsync = sync;
  return NULL;
}

static conn_t *conn_args(napi_env env, napi_callback_info info, size_t n, napi_value *argv,
                         const char *usage, rx_t **rxp) {
  rx_t *rx = rx_args(env, info, n, argv, usage);
  if (!rx) return NULL;
  uint32_t id;
  if (napi_get_value_uint32(env, argv[1], &id) != napi_ok) {
    napi_throw_type_error(env, NULL, "forward addon: connection id must be a number");
    return NULL;
  }
  *rxp = rx;
  return find_conn(rx, id); /* NULL: gone (closed by its peer), not an error */
}

static napi_value js_write(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  rx_t *rx;
  conn_t *c = conn_args(env, info, 3, argv, "write(handle, connId, bytes)", &rx);
  if (!c) return NULL;
  void *data;
  size_t len;
  CHECK(napi_get_buffer_info(env, argv[2], &data, &len));
  if (queue_out(c, data, len) != 0) {
    close_conn(c);
    return NULL;
  }
  if (flush_out(c) == 0) update_poll(c);
  return NULL;
}

static napi_value js_resume_conn(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  rx_t *rx;
  conn_t *c = conn_args(env, info, 2, argv, "resumeConn(handle, connId)", &rx);
  if (!c) return NULL;
  c->held = 0;
  update_poll(c);
  kick(rx);
  return NULL;
}

static napi_value js_close_conn(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  rx_t *rx;
  conn_t *c = conn_args(env, info, 2, argv, "closeConn(handle, connId)", &rx);
  if (c) close_conn(c);
  return NULL;
}

static napi_value js_pause(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  rx_t *rx = rx_args(env, info, 1, argv, "pause(handle)");
  if (!rx) return NULL;
  rx->paused = 1;
  for (conn_t *c = rx->conns; c; c = c->next) update_poll(c);
  return NULL;
}

static napi_value js_resume(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  rx_t *rx = rx_args(env, info, 1, argv, "resume(handle)");
  if (!rx) return NULL;
  if (!rx->paused) return NULL;
  rx->paused = 0;
  for (conn_t *c = rx->conns; c; c = c->next) update_poll(c);
  kick(rx);
  return NULL;
}

static napi_value js_stats(napi_env env, napi_callback_info info) {
  napi_value argv[1], o, e;
  rx_t *rx = rx_args(env, info, 1, argv, "stats(handle)");
  if (!rx) return NULL;
  CHECK(napi_create_object(env, &o));
  set_num(env, o, "conns", rx->conns_open);
  set_num(env, o, "connsTotal", rx->conns_total);
  set_num(env, o, "fast", rx->fast);
  set_num(env, o, "deferred", rx->deferred);
  set_num(env, o, "heartbeats", rx->heartbeats);
  set_num(env, o, "malformed", rx->malformed);
  set_num(env, o, "journalBytes", rx->journal_bytes);
  set_num(env, o, "deliveries", rx->deliveries);
  set_num(env, o, "journalErrors", rx->journal_errors);
  CHECK(napi_create_string_utf8(env, rx->last_error ? strerror(rx->last_error) : "",
                                NAPI_AUTO_LENGTH, &e));
  CHECK(napi_set_named_property(env, o, "lastError", e));
  return o;
}

static void on_listener_closed(uv_handle_t *h) {
  listener_t *l = (listener_t *)h->data;
  close(l->fd);
  rx_unref(l->rx);
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  rx_t *rx = rx_args(env, info, 1, argv, "close(handle)");
  if (!rx) return NULL;
  deliver(rx);
  rx->closing = 1;
  while (rx->conns) close_conn(rx->conns);
  for (int i = 0; i < rx->nlisteners; i++)
    uv_close((uv_handle_t *)&rx->listeners[i].poll, on_listener_closed);
  uv_close((uv_handle_t *)&rx->deliver_timer, on_timer_closed);
  uv_close((uv_handle_t *)&rx->kick_timer, on_timer_closed);
  napi_delete_reference(env, rx->cb);
  napi_async_destroy(env, rx->actx);
  if (rx->jmap) munmap(rx->jmap, rx->jcap);
  rx->jmap = NULL;
  rx->jcap = 0;
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  struct {
    const char *name;
    napi_callback fn;
  } fns[] = {{"create", js_create},         {"listenTcp", js_listen_tcp},
             {"listenUnix", js_listen_unix}, {"setJournal", js_set_journal},
             {"write", js_write},           {"resumeConn", js_resume_conn},
             {"closeConn", js_close_conn},  {"pause", js_pause},
             {"resume", js_resume},         {"stats", js_stats},
             {"close", js_close}};
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value f;
    CHECK(napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &f));
    CHECK(napi_set_named_property(env, exports, fns[i].name, f));
  }
  return exports;
}

NAPI_MODULE(logsd_forward, init)
