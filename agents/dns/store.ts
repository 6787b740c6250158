/**
 * Keeps the ZoneTree exact with etcd without reading etcd per query: a snapshot of the prefix
 * (with each lease's remaining TTL), then a watch from the snapshot's revision + 1. A
 * cancelled watch (compaction) or a failed snapshot re-lists after a back-off. While etcd is
 * unreachable the tree keeps serving what it had; `up` says so for /readyz and a metric.
 * Every applied change calls `onChange` (the server clears its answer cache).
 */
import type { Etcd3, Watcher } from 'etcd3';
import type { Logger } from '../common/logger.js';
import { errorMessage } from '../common/errors.js';
import { explainDenied } from '../common/etcd.js';
import { keyLabels, RecordError } from './records.js';
import { entryFrom, type ZoneTree } from './tree.js';

export interface StoreOptions {
  client: Etcd3;
  prefix: string;
  tree: ZoneTree;
  log: Logger;
  onChange: () => void;
  /** Health probe period while running, ms. */
  probeMs?: number;
}

interface Kv {
  key: Buffer;
  value: Buffer;
  lease: string;
}

export class RecordStore {
  /** etcd revision the tree reflects (SOA serial). */
  revision = 0;
  /** Whether etcd answered the last snapshot, watch or probe. */
  up = false;
  /** Records skipped because their JSON was bad. */
  badRecords = 0;
  /** Watch events applied. */
  changes = 0;
  private watcher: Watcher | null = null;
  private stopped = false;
  private retry: NodeJS.Timeout | undefined;
  /** Snapshot attempts failed in a row (logged on the first and every 30th). */
  private failures = 0;
  private probe: NodeJS.Timeout | undefined;
  private queue: Promise<void> = Promise.resolve();
  private readonly prefix: string;
  private readonly badKeys = new Set<string>();
  /** Resolves once the first snapshot is loaded. */
  readonly synced: Promise<void>;
  /** Whether a snapshot was ever loaded (before that, in-zone answers would be guesses). */
  loaded = false;
  private markSynced!: () => void;

  constructor(private readonly o: StoreOptions) {
    this.prefix = o.prefix.replace(/\/+$/, '');
    this.synced = new Promise((r) => (this.markSynced = r));
  }

  /** Starts loading; never throws — an unreachable etcd is retried in the background. */
  start(): void {
    void this.resync(0);
    this.probe = setInterval(() => void this.checkHealth(), this.o.probeMs ?? 2000);
    this.probe.unref();
  }

  private async checkHealth(): Promise<void> {
    try {
      await withTimeout(this.o.client.maintenance.status(), 1500);
      if (!this.up) this.o.log.info('etcd reachable again');
      this.up = true;
    } catch (err) {
      if (this.up)
        this.o.log.warn({ err: errorMessage(err) }, 'etcd unreachable; answering from memory');
      this.up = false;
    }
  }

  private resync(delayMs: number): Promise<void> {
    clearTimeout(this.retry);
    return new Promise((resolve) => {
      this.retry = setTimeout(() => {
        this.queue = this.queue.then(() => this.snapshot()).then(resolve, resolve);
      }, delayMs);
    });
  }

  private async leaseTtls(kvs: Kv[]): Promise<Map<string, number>> {
    const ids = [...new Set(kvs.map((k) => k.lease).filter((l) => l && l !== '0'))];
    const out = new Map<string, number>();
    await Promise.all(
      ids.map(async (id) => {
        try {
          const r = await this.o.client.leaseClient.leaseTimeToLive({ ID: id });
          out.set(id, Math.max(0, Number(r.TTL)));
        } catch (err) {
          this.o.log.debug({ lease: id, err: errorMessage(err) }, 'lease TTL unknown');
        }
      }),
    );
    return out;
  }

  private async snapshot(): Promise<void> {
    if (this.stopped) return;
    await this.watcher?.cancel().catch(() => undefined);
    this.watcher = null;
    try {
      const res = await withTimeout(
        this.o.client.kv
          .range({
            key: Buffer.from(`${this.prefix}/`),
            range_end: Buffer.from(`${this.prefix}0`),
          })
          .catch(explainDenied('read', `${this.prefix}/*`)),
        5000,
      );
      const kvs = (res.kvs ?? []) as unknown as Kv[];
      const leases = await this.leaseTtls(kvs);
      if (this.stopped) return;
      // Swap in one synchronous step: queries never see a half-loaded tree.
      this.o.tree.clear();
      for (const kv of kvs) this.apply(kv, leases.get(kv.lease));
      this.revision = Number(res.header.revision);
      this.up = true;
      this.o.onChange();
      this.o.log.info(
        { records: this.o.tree.size, revision: this.revision },
        'zone loaded from etcd',
      );
      this.failures = 0;
      this.loaded = true;
      this.markSynced();
      await this.watch();
    } catch (err) {
      this.up = false;
      if (this.failures++ % 30 === 0)
        this.o.log.warn(
          { err: errorMessage(err), attempts: this.failures },
          'etcd snapshot failed; retrying every 1 s',
        );
      void this.resync(1000);
    }
  }

  private async watch(): Promise<void> {
    const w = await this.o.client
      .watch()
      .prefix(`${this.prefix}/`)
      .startRevision(String(this.revision + 1))
      .create();
    if (this.stopped) {
      await w.cancel();
      return;
    }
    this.watcher = w;
    w.on('data', (res) => {
      this.queue = this.queue.then(() =>
        this.onEvents(res.events as never, Number(res.header.revision)),
      );
    });
    w.on('disconnected', () => {
      if (this.up) this.o.log.warn('etcd watch disconnected; answering from memory');
      this.up = false;
    });
    w.on('connected', () => {
      this.up = true;
    });
    w.on('error', (err) => {
      if (this.stopped) return;
      this.o.log.warn({ err: errorMessage(err) }, 'etcd watch cancelled (compaction?); re-listing');
      void this.resync(200);
    });
  }

  private async onEvents(
    events: { type: 'Put' | 'Delete'; kv: Kv }[],
    revision: number,
  ): Promise<void> {
    if (this.stopped || this.watcher === null) return;
    const puts = events.filter((e) => e.type === 'Put').map((e) => e.kv);
    const leases = await this.leaseTtls(puts);
    for (const e of events) {
      if (e.type === 'Put') this.apply(e.kv, leases.get(e.kv.lease));
      else {
        const labels = keyLabels(e.kv.key.toString(), this.prefix);
        if (labels) this.o.tree.delete(labels);
        this.badKeys.delete(e.kv.key.toString());
      }
    }
    this.changes += events.length;
    if (revision > this.revision) this.revision = revision;
    this.o.onChange();
  }

  private apply(kv: Kv, leaseTtl: number | undefined): void {
    const key = kv.key.toString();
    try {
      const { labels, entry } = entryFrom(key, kv.value.toString(), this.prefix, leaseTtl);
      this.o.tree.set(labels, entry);
      this.badKeys.delete(key);
    } catch (err) {
      if (!(err instanceof RecordError)) throw err;
      // A bad record replaces (hides) any good one it overwrote; logged once per key.
      const labels = keyLabels(key, this.prefix);
      if (labels) this.o.tree.delete(labels);
      this.badRecords++;
      if (!this.badKeys.has(key)) this.o.log.warn({ key }, `skipping record: ${err.message}`);
      this.badKeys.add(key);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    clearInterval(this.probe);
    await this.watcher?.cancel().catch(() => undefined);
    await this.queue.catch(() => undefined);
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer from etcd within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
