/**
 * `logsd agent`: the host's inputs (the file input reading Docker's json-file logs, and/or the
 * forward input receiving Docker's fluentd driver), one durable buffer and one shipper to the
 * aggregator. This file only wires them; each input lives in inputs/, behind `Input`.
 */
import type { ConnectionOptions } from 'node:tls';
import type { Logger } from '../common/logger.js';
import { metricsFor, type MetricSet } from '../common/metrics.js';
import { DiskBuffer, type FsyncPolicy } from './buffer.js';
import { Shipper, type Target } from './shipper.js';
import type { Input, InputContext } from './inputs/input.js';
import { startForwardInput, type ForwardIoMode } from './inputs/forward.js';
import { startFileInput } from './inputs/file.js';

export interface AgentConfig {
  listen?: { host: string; port: number };
  unixSocket?: string;
  /** The forward input's transport (inputs/forward.ts); default auto. */
  forwardIo?: ForwardIoMode;
  bufferDir: string;
  bufferMaxBytes: number;
  fsync: FsyncPolicy;
  aggregators: Target[];
  hostname: string;
  sharedKey?: string;
  tls?: ConnectionOptions;
  /** dockerd socket for the forward input's container metadata; undefined = records only. */
  dockerSocket?: string;
  /** Docker's containers directory for the file input (json-file logs); undefined = off. */
  containersDir?: string;
  batchBytes?: number;
  log: Logger;
  metrics?: MetricSet;
}

export interface RunningAgent {
  port: number;
  buffer: DiskBuffer;
  shipper: Shipper;
  metrics: MetricSet;
  /** True when every record the inputs accepted is in the buffer and the aggregator acked all. */
  drained(): boolean;
  stop(): Promise<void>;
}

export async function startAgent(cfg: AgentConfig): Promise<RunningAgent> {
  const { log } = cfg;
  const metrics = cfg.metrics ?? metricsFor('logs_agent');
  const shipped = metrics.counter('records_shipped_total', 'records acked by the aggregator');
  const retries = metrics.counter('ship_retries_total', 'aggregator connections lost or refused');
  const backlog = metrics.gauge('buffer_backlog_records', 'records buffered, not yet acked');
  const bufBytes = metrics.gauge('buffer_bytes', 'bytes of the on-disk buffer');
  const stalls = metrics.counter(
    'buffer_full_total',
    'times input paused because the buffer was full',
  );

  const buffer = new DiskBuffer({
    dir: cfg.bufferDir,
    maxBytes: cfg.bufferMaxBytes,
    fsync: cfg.fsync,
  });

  let spaceWaiters: (() => void)[] = [];
  const shipper: Shipper = new Shipper({
    targets: cfg.aggregators,
    buffer,
    log,
    hostname: cfg.hostname,
    ...(cfg.sharedKey ? { sharedKey: cfg.sharedKey } : {}),
    ...(cfg.tls ? { tls: cfg.tls } : {}),
    ...(cfg.batchBytes ? { batchBytes: cfg.batchBytes } : {}),
    onShipped: (n) => {
      shipped.inc(n);
      if (!buffer.full) for (const w of spaceWaiters.splice(0)) w();
    },
    onRetry: () => retries.inc(),
  });
  const gaugeTimer = setInterval(() => {
    backlog.set(shipper.backlog);
    bufBytes.set(buffer.bytes);
  }, 1000);
  gaugeTimer.unref();

  const ctx: InputContext = {
    hostname: cfg.hostname,
    buffer,
    shipper,
    log,
    metrics,
    // Woken by an ack that frees space, or after 1 s (a full disk can get space from elsewhere).
    waitForSpace: () =>
      new Promise<void>((resolve) => {
        stalls.inc();
        spaceWaiters.push(resolve);
        setTimeout(resolve, 1000).unref();
      }),
  };
  const inputs: Input[] = [];
  let port = 0;
  if (cfg.listen || cfg.unixSocket) {
    const fwd = await startForwardInput(ctx, {
      bufferDir: cfg.bufferDir,
      fsync: cfg.fsync,
      ...(cfg.forwardIo ? { io: cfg.forwardIo } : {}),
      ...(cfg.listen ? { listen: cfg.listen } : {}),
      ...(cfg.unixSocket ? { unixSocket: cfg.unixSocket } : {}),
      ...(cfg.dockerSocket ? { dockerSocket: cfg.dockerSocket } : {}),
      ...(cfg.containersDir ? { containersDir: cfg.containersDir } : {}),
    });
    port = fwd.port;
    inputs.push(fwd);
  }
  if (cfg.containersDir)
    inputs.push(
      await startFileInput(ctx, {
        containersDir: cfg.containersDir,
        stateDir: cfg.bufferDir,
        fsync: cfg.fsync,
      }),
    );
  shipper.start();
  log.info(
    { inputs: inputs.map((i) => i.name), backlog: buffer.backlog, agentId: buffer.agentId },
    'logs agent started',
  );

  return {
    port,
    buffer,
    shipper,
    metrics,
    drained: () => buffer.backlog === 0 && inputs.every((i) => (i.pending?.() ?? 0) === 0),
    async stop() {
      for (const i of inputs) await i.stop();
      await shipper.flush(3000);
      shipper.stop();
      clearInterval(gaugeTimer);
      buffer.close();
      spaceWaiters = [];
    },
  };
}
