/**
 * The agent's input interface. An input turns some source of container output into records
 * and hands them to the agent: the forward input appends them to the durable buffer (and acks
 * its sender only after that), the file input ships straight from Docker's log files (they are
 * its durable buffer) as its own ship sources. Either way nothing is acked upstream, or
 * checkpointed, before it is safe.
 */
import type { Logger } from '../../common/logger.js';
import type { MetricSet } from '../../common/metrics.js';
import type { DiskBuffer } from '../buffer.js';
import type { Shipper } from '../shipper.js';

export interface InputContext {
  hostname: string;
  buffer: DiskBuffer;
  shipper: Shipper;
  log: Logger;
  metrics: MetricSet;
  /** Resolves once the durable buffer has room again (counts a stall). */
  waitForSpace(): Promise<void>;
}

export interface Input {
  readonly name: string;
  /** Records accepted (acked upstream) but not yet in the buffer; 0 when all are in it. */
  pending?(): number;
  stop(): Promise<void>;
}
