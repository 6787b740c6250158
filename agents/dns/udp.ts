/**
 * The UDP side of the DNS server, behind one small interface with two siblings:
 * - `dgram` (udp-dgram.ts): Node's dgram socket; one recvmsg, one sendmsg and one JS callback
 *   per packet.
 * - `batch` (udp-batch.ts): the native addon (native/udp.c), which drains the socket with
 *   recvmmsg, answers a whole batch in one JS call and sends it with one sendmmsg.
 * `--udp-io auto` (the default) takes `batch` when the addon loads and otherwise says why and
 * uses `dgram`; `--udp-io batch` refuses to start without the addon.
 */
import { UsageError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';

/** Answer bytes for one query, null to drop it, or a Promise of either (upstream involved). */
export type UdpAnswer = (
  req: Buffer,
  client: string,
  t0: number,
) => Buffer | null | Promise<Buffer | null>;

export interface UdpListener {
  /** The bound port (the one picked when 0 was asked). */
  readonly port: number;
  close(): Promise<void>;
  /** The transport's own counters, where it keeps any (batch: packets, batches, drops). */
  stats?(): Record<string, number | string>;
}

export interface UdpTransport {
  readonly name: 'dgram' | 'batch';
  /** Binds host:port (an IP literal) and answers every datagram through `answer`. */
  bind(host: string, port: number, answer: UdpAnswer, log: Logger): Promise<UdpListener>;
}

/** Socket buffers of every dnsd UDP socket (both transports). */
export const UDP_BUFFER_BYTES = 1 << 20;

export const UDP_IO_MODES = ['auto', 'batch', 'dgram'] as const;
export type UdpIoMode = (typeof UDP_IO_MODES)[number];

/**
 * The transport for --udp-io `mode`, given the dgram transport and the outcome of loading the
 * batch one (the transport, or why it could not load). `auto` falls back to dgram and returns a
 * warning to log; an explicit `batch` without the addon is a UsageError.
 */
export function pickUdpTransport(
  mode: UdpIoMode,
  dgram: UdpTransport,
  batch: UdpTransport | Error,
): { transport: UdpTransport; warning?: string } {
  if (mode === 'dgram') return { transport: dgram };
  if (!(batch instanceof Error)) return { transport: batch };
  if (mode === 'batch')
    throw new UsageError(
      `--udp-io batch: the batched UDP addon is not available (${batch.message}); build it with scripts/setup.sh, or use --udp-io dgram`,
    );
  return {
    transport: dgram,
    warning: `--udp-io auto: the batched UDP addon is not available (${batch.message}); answering through Node's dgram (about 4× the CPU per query); build it with scripts/setup.sh`,
  };
}
