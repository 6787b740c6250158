/**
 * The forward input: a Forward-protocol receiver for Docker's fluentd log driver (or any
 * Fluentd/Fluent Bit client). A frame is acked only once it is safe: in the durable buffer, or
 * (native transport) in the forward journal the buffer is fed from. A connection sending
 * malformed bytes is closed and counted; others carry on. When the buffer is full the input
 * stops reading (and so stops acking): backpressure, never a silent drop.
 *
 * Two transports behind one interface (`--forward-io`):
 * - `native` (forward-native.ts, native/forward.c): Docker's one-line Message frames are
 *   journaled and acked in C on the event loop, and enriched into the buffer in batches after;
 * - `node` (forward-node.ts): Node's sockets, every frame decoded, stored and acked in JS.
 * `auto` (the default) takes `native` when the addon loads, else says why and uses `node`.
 *
 * It listens before anything slow is loaded (the Docker client comes after): the driver
 * reconnects with a growing backoff, so every second of start-up can cost several seconds of
 * dockerd's 10 s post-exit window (docs/logs.md, "Forward input and agent restarts").
 */
import { UsageError } from '../../common/errors.js';
import type { FsyncPolicy } from '../buffer.js';
import type { Input, InputContext } from './input.js';
import { createForwardCore, type ForwardCoreConfig } from './forward-core.js';
import { listenNode } from './forward-node.js';
import { listenNative, loadForwardAddon } from './forward-native.js';

export const FORWARD_IO_MODES = ['auto', 'native', 'node'] as const;
export type ForwardIoMode = (typeof FORWARD_IO_MODES)[number];

export interface ForwardTransportConfig {
  listen?: { host: string; port: number };
  unixSocket?: string;
  /** The agent's buffer dir: the native transport keeps its journal there. */
  bufferDir: string;
  fsync: FsyncPolicy;
}

export interface ForwardInputConfig extends ForwardCoreConfig, ForwardTransportConfig {
  io?: ForwardIoMode;
}

export interface ForwardListener {
  port: number;
  /** Frames acked but not yet stored (the native transport's journal backlog). */
  pending?(): number;
  stop(): Promise<void>;
}

export interface ForwardInput extends Input {
  port: number;
  /** The transport in use. */
  io: 'native' | 'node';
}

export async function startForwardInput(
  ctx: InputContext,
  cfg: ForwardInputConfig,
): Promise<ForwardInput> {
  const { log } = ctx;
  const core = createForwardCore(ctx, cfg);
  const mode = cfg.io ?? 'auto';
  let listener: ForwardListener;
  let io: 'native' | 'node' = 'node';
  const addon = mode === 'node' ? undefined : loadForwardAddon();
  if (addon instanceof Error) {
    if (mode === 'native')
      throw new UsageError(
        `--forward-io native: the native forward receiver is not available (${addon.message}); build it with scripts/setup.sh, or use --forward-io node`,
      );
    log.warn(
      `--forward-io auto: the native forward receiver is not available (${addon.message}); receiving through Node's sockets (several times the CPU per line); build it with scripts/setup.sh`,
    );
  }
  if (addon && !(addon instanceof Error)) {
    listener = await listenNative(ctx, core, cfg, addon);
    io = 'native';
  } else listener = await listenNode(ctx, core, cfg);
  core.startDocker();
  log.info({ port: listener.port, unixSocket: cfg.unixSocket, io }, 'forward input listening');
  return {
    name: 'forward',
    port: listener.port,
    io,
    pending: () => listener.pending?.() ?? 0,
    async stop() {
      core.stop();
      await listener.stop();
    },
  };
}
