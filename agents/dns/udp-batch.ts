/**
 * The `batch` UDP transport (udp.ts): the native addon native/udp.c owns the socket, drains it
 * with recvmmsg into one arena and calls `onBatch` once per batch of up to 64 datagrams; the
 * answers go back into an output arena and out with one sendmmsg. Answers that need upstream
 * (a Promise) are sent on their own when they resolve. Per query, the only allocation here is
 * the copy of the query handed to the resolver (which may keep it while it forwards); IPv4
 * client names come from a small cache. A datagram longer than the 4096-byte slot is read as its
 * first 4096 bytes, so it is answered if its question and records fit and otherwise dropped as
 * malformed by the resolver.
 */
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { errorMessage } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import { UDP_BUFFER_BYTES, type UdpAnswer, type UdpListener, type UdpTransport } from './udp.js';

/** The addon's exports (see the contract at the top of native/udp.c). */
interface Native {
  BATCH: number;
  SLOT: number;
  bind(family: 4 | 6, host: string, port: number, rcvbuf: number, sndbuf: number): Handle;
  port(h: Handle): number;
  start(
    h: Handle,
    inArena: Buffer,
    inMeta: Uint32Array,
    outArena: Buffer,
    outMeta: Uint32Array,
    onBatch: (n: number) => number,
  ): void;
  sendTo(
    h: Handle,
    buf: Buffer,
    port: number,
    scope: number,
    a0: number,
    a1: number,
    a2: number,
    a3: number,
  ): void;
  peerName(h: Handle, i: number): string;
  stats(h: Handle): BatchStats;
  close(h: Handle): void;
}
declare const handleBrand: unique symbol;
type Handle = { readonly [handleBrand]: true };

interface BatchStats {
  packets: number;
  batches: number;
  /** Datagrams longer than the slot, read cut. */
  truncated: number;
  /** Answers the kernel refused (counted, skipped). */
  sendErrors: number;
  /** Answers dropped because the send buffer stayed full. */
  dropped: number;
  lastError: string;
  /** Set when libuv could no longer poll the socket (it stopped answering). */
  pollError: string;
  [k: string]: number | string;
}

export const ADDON_PATH = fileURLToPath(new URL('./native/udp.node', import.meta.url));

const IN_STRIDE = 8;
const OUT_STRIDE = 3;
const NAMES_MAX = 4096;

/** Loads the addon: the transport, or the reason it cannot be used. */
export function loadBatchTransport(path = ADDON_PATH): UdpTransport | Error {
  let native: Native;
  try {
    native = createRequire(import.meta.url)(path) as Native;
  } catch (err) {
    return new Error(`${path}: ${errorMessage(err).split('\n')[0]}`);
  }
  if (typeof native.bind !== 'function' || typeof native.start !== 'function')
    return new Error(`${path}: not dnsd's UDP addon`);
  return {
    name: 'batch',
    bind: async (host, port, answer, log) => bindBatch(native, host, port, answer, log),
  };
}

async function bindBatch(
  native: Native,
  host: string,
  port: number,
  answer: UdpAnswer,
  log: Logger,
): Promise<UdpListener> {
  const v6 = isIP(host) === 6;
  const h = native.bind(v6 ? 6 : 4, host, port, UDP_BUFFER_BYTES, UDP_BUFFER_BYTES);
  const { BATCH, SLOT } = native;
  const inArena = Buffer.alloc(BATCH * SLOT);
  const outArena = Buffer.alloc(BATCH * SLOT);
  const inMeta = new Uint32Array(BATCH * IN_STRIDE);
  const outMeta = new Uint32Array(BATCH * OUT_STRIDE);
  let closed = false;
  // IPv4 peers: dotted names by address, so a hit builds no string (cleared when it grows).
  const names = new Map<number, string>();
  const v4name = (a: number): string => {
    let s = names.get(a);
    if (s === undefined) {
      if (names.size >= NAMES_MAX) names.clear();
      s = `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
      names.set(a, s);
    }
    return s;
  };
  const later = (p: Promise<Buffer | null>, m: number): void => {
    const port = inMeta[m + 2]!;
    const scope = inMeta[m + 3]!;
    const a0 = inMeta[m + 4]!;
    const a1 = inMeta[m + 5]!;
    const a2 = inMeta[m + 6]!;
    const a3 = inMeta[m + 7]!;
    p.then(
      (b) => {
        if (b && !closed) native.sendTo(h, b, port, scope, a0, a1, a2, a3);
      },
      () => undefined,
    );
  };
  const onBatch = (n: number): number => {
    let k = 0;
    let off = 0;
    for (let i = 0; i < n; i++) {
      const m = i * IN_STRIDE;
      const len = inMeta[m]!;
      const req = Buffer.allocUnsafe(len);
      inArena.copy(req, 0, i * SLOT, i * SLOT + len);
      const out = answer(
        req,
        v6 ? native.peerName(h, i) : v4name(inMeta[m + 4]!),
        performance.now(),
      );
      if (out === null) continue;
      if (out instanceof Promise) later(out, m);
      else if (out.length > SLOT) later(Promise.resolve(out), m);
      else {
        out.copy(outArena, off);
        const o = k * OUT_STRIDE;
        outMeta[o] = off;
        outMeta[o + 1] = out.length;
        outMeta[o + 2] = i;
        off += out.length;
        k++;
      }
    }
    return k;
  };
  try {
    native.start(h, inArena, inMeta, outArena, outMeta, onBatch);
  } catch (err) {
    native.close(h);
    throw err;
  }
  const bound = native.port(h);
  // Refused or dropped answers are counted by the addon; say so (at most every 10 s).
  let reported = 0;
  let pollReported = false;
  const watch = setInterval(() => {
    const s = native.stats(h);
    if (s.pollError && !pollReported) {
      pollReported = true;
      log.error(
        { err: s.pollError, host, port: bound },
        'udp socket can no longer be polled: not answering UDP',
      );
    }
    const lost = s.sendErrors + s.dropped;
    if (lost > reported)
      log.warn(
        { sendErrors: s.sendErrors, dropped: s.dropped, lastError: s.lastError },
        'udp answers not sent (send buffer full or refused by the kernel)',
      );
    reported = lost;
  }, 10_000);
  watch.unref();
  return {
    port: bound,
    stats: () => ({ ...native.stats(h) }),
    close: async () => {
      if (closed) return;
      closed = true;
      clearInterval(watch);
      native.close(h);
      // libuv closes the fd in its close phase, after the next check phase.
      for (let i = 0; i < 2; i++) await new Promise((r) => setImmediate(r));
    },
  };
}
