/**
 * The subnet manager on etcd v3, in flannel's key layout. It keeps an exact in-memory copy of
 * `<prefix>/subnets/` (list, then watch from the listed revision; after compaction or a
 * cancelled watch it lists again), and claims subnets with single transactions:
 * create-if-absent for a new subnet, compare-mod-revision for taking over our own old lease.
 * Leases are kept alive with etcd's keep-alive RPC on the same lease ID (no re-put, no leaked
 * etcd leases); a key without an etcd lease is a reservation and never gets one.
 */
import { EventEmitter } from 'node:events';
import {
  decodeLease,
  encodeLease,
  keyToSubnets,
  subnetKey,
  subnetsPrefix,
  type Lease,
  type LeaseAttrs,
} from './lease.js';
import type { Cidr, Prefix } from './ip.js';
import { errorMessage } from '../common/errors.js';
import { EtcdPermissionError, explainDenied, isPermissionDenied } from '../common/etcd-settings.js';
import type { EtcdKv, EtcdWatch } from '../common/etcd-client.js';
import { prefixEnd, type KeyValue, type RequestOp } from '../common/etcd-wire.js';

export interface StoreEvents {
  /** The lease set changed: these keys were put or deleted, or (undefined) a fresh list replaced it. */
  change: [keys: readonly string[] | undefined];
  /** A record could not be decoded; it is skipped. */
  invalid: [key: string, reason: string];
  /** The watch broke and the store listed again. */
  relist: [reason: string];
}

/** What we hold: the subnet, its key, and the etcd lease ID ("0" for a reservation). */
export interface Held {
  subnet: Cidr;
  /** Our IPv6 subnet, on a dual-stack network. */
  subnet6?: Prefix | undefined;
  key: string;
  etcdLease: string;
  value: string;
}

export class LeaseStore extends EventEmitter<StoreEvents> {
  readonly leases = new Map<string, Lease>();
  private watcher: EtcdWatch | undefined;
  private closed = false;
  /** Keys whose last bad value was already reported, so bad data is logged once. */
  private readonly reported = new Map<string, string>();

  constructor(
    private readonly client: EtcdKv,
    readonly prefix: string,
  ) {
    super();
  }

  configKey(): string {
    return `${this.prefix.replace(/\/+$/, '')}/config`;
  }

  async getConfig(): Promise<string | null> {
    const res = await this.client
      .range({ key: this.configKey() })
      .catch(explainDenied('read', this.configKey()));
    return res.kvs[0]?.value ?? null;
  }

  /** Replaces the in-memory set with a fresh list; returns the revision it reflects. */
  async list(): Promise<string> {
    const prefix = subnetsPrefix(this.prefix);
    const res = await this.client
      .range({ key: prefix, rangeEnd: prefixEnd(prefix) })
      .catch(explainDenied('read', `${subnetsPrefix(this.prefix)}*`));
    this.leases.clear();
    for (const kv of res.kvs) this.apply(kv, false);
    this.emit('change', undefined);
    return res.header.revision;
  }

  /** Lists, then watches from the listed revision; re-lists whenever the watch is cancelled (e.g. compaction). */
  async sync(): Promise<void> {
    const rev = await this.list();
    if (this.closed) return;
    // Listeners go on before the watch is created: a start revision that was compacted away is
    // answered with "created" and "canceled" together, and the error must not be missed.
    const prefix = subnetsPrefix(this.prefix);
    const w = this.client.watch({
      key: prefix,
      rangeEnd: prefixEnd(prefix),
      startRevision: String(BigInt(rev) + 1n),
    });
    this.watcher = w;
    w.on('events', (events) => {
      for (const ev of events) this.apply(ev.kv, ev.type === 'Delete');
      this.emit(
        'change',
        events.map((ev) => ev.kv.key),
      );
    });
    w.on('error', (err) => {
      if (this.closed || this.watcher !== w) return;
      this.watcher = undefined;
      this.emit(
        'relist',
        isPermissionDenied(err)
          ? new EtcdPermissionError('read', `${subnetsPrefix(this.prefix)}* (watch)`).message
          : errorMessage(err),
      );
      // A watch that reported an error has ended; there is nothing to cancel.
      const retry = () => {
        if (this.closed) return;
        this.sync().catch((e: unknown) => {
          this.emit('relist', `list failed: ${errorMessage(e)}`);
          setTimeout(retry, 1000).unref();
        });
      };
      retry();
    });
  }

  private apply(kv: KeyValue, deleted: boolean): void {
    const key = kv.key;
    const subnets = keyToSubnets(this.prefix, key);
    if (!subnets) return;
    const { subnet, subnet6 } = subnets;
    if (deleted) {
      this.leases.delete(key);
      this.reported.delete(key);
      return;
    }
    const value = kv.value;
    try {
      const attrs = decodeLease(value);
      this.leases.set(key, {
        key,
        subnet,
        ...(subnet6 ? { subnet6 } : {}),
        attrs,
        etcdLease: kv.lease,
        modRevision: kv.modRevision,
      });
      this.reported.delete(key);
    } catch (err) {
      this.leases.delete(key);
      if (this.reported.get(key) !== value) {
        this.reported.set(key, value);
        this.emit('invalid', key, errorMessage(err));
      }
    }
  }

  /**
   * Claims a free subnet: grant an etcd lease of `ttlSeconds`, then put only if the key does not
   * exist. Resolves undefined when someone else got there first (list again and retry).
   */
  async claimNew(
    subnet: Cidr,
    attrs: LeaseAttrs,
    ttlSeconds: number,
    subnet6?: Prefix,
  ): Promise<Held | undefined> {
    const key = subnetKey(this.prefix, subnet, subnet6);
    const value = encodeLease(attrs);
    const { id } = await this.client.leaseGrant(ttlSeconds);
    const res = await this.client
      .txn({
        compare: [{ key, target: 'Create', result: '==', value: 0 }],
        success: [{ put: { key, value, lease: id } }],
      })
      .catch(explainDenied('write', key));
    if (res.succeeded) return { subnet, subnet6, key, etcdLease: id, value };
    await this.client.leaseRevoke(id).catch(() => undefined);
    return undefined;
  }

  /**
   * Takes over a lease that already carries our PublicIP (restart). A reservation stays without
   * TTL; a live etcd lease is adopted as is; an expired one is replaced by a fresh grant. The
   * value is rewritten only when it differs, guarded by the mod revision we saw.
   */
  async adopt(existing: Lease, attrs: LeaseAttrs, ttlSeconds: number): Promise<Held | undefined> {
    const value = encodeLease(attrs);
    const current = await this.client
      .range({ key: existing.key })
      .catch(explainDenied('read', existing.key));
    const kv = current.kvs[0];
    if (!kv || kv.modRevision !== existing.modRevision) return undefined;
    let id = kv.lease;
    const reservation = id === '0';
    if (!reservation) {
      const ttl = await this.client.leaseTimeToLive(id);
      if (Number(ttl.ttl) <= 0) id = (await this.client.leaseGrant(ttlSeconds)).id;
    }
    if (kv.value !== value || id !== kv.lease) {
      const put: RequestOp = {
        put: { key: existing.key, value, lease: reservation ? undefined : id },
      };
      const res = await this.client
        .txn({
          compare: [{ key: existing.key, target: 'Mod', result: '==', value: kv.modRevision }],
          success: [put],
        })
        .catch(explainDenied('write', existing.key));
      if (!res.succeeded) return undefined;
    }
    return {
      subnet: existing.subnet,
      subnet6: existing.subnet6,
      key: existing.key,
      etcdLease: id,
      value,
    };
  }

  /** Rewrites our value (e.g. a new VtepMAC) on the same etcd lease; false if the key is gone. */
  async update(held: Held, attrs: LeaseAttrs): Promise<Held | undefined> {
    const value = encodeLease(attrs);
    const lease = held.etcdLease !== '0' ? held.etcdLease : undefined;
    const res = await this.client
      .txn({
        compare: [{ key: held.key, target: 'Create', result: '>', value: 0 }],
        success: [{ put: { key: held.key, value, lease } }],
      })
      .catch(explainDenied('write', held.key));
    return res.succeeded ? { ...held, value } : undefined;
  }

  /** One keep-alive round trip; resolves the remaining TTL in seconds (0 = the lease is gone). */
  keepAlive(id: string): Promise<number> {
    return this.client.keepAliveOnce(id);
  }

  async close(): Promise<void> {
    this.closed = true;
    const w = this.watcher;
    this.watcher = undefined;
    if (w) await w.cancel().catch(() => undefined);
  }
}
