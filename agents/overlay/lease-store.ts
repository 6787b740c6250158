/**
 * The subnet manager on etcd v3, in flannel's key layout. It keeps an exact in-memory copy of
 * `<prefix>/subnets/` (list, then watch from the listed revision; after compaction or a
 * cancelled watch it lists again), and claims subnets with single transactions:
 * create-if-absent for a new subnet, compare-mod-revision for taking over our own old lease.
 * Leases are kept alive with etcd's keep-alive RPC on the same lease ID (no re-put, no leaked
 * etcd leases); a key without an etcd lease is a reservation and never gets one.
 */
import { EventEmitter } from 'node:events';
import type { Etcd3, IKeyValue, Watcher } from 'etcd3';
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
import {
  EtcdPermissionError,
  explainDenied,
  isPermissionDenied,
  keepAliveOnce,
} from '../common/etcd.js';

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
  private watcher: Watcher | undefined;
  private closed = false;
  /** Keys whose last bad value was already reported, so bad data is logged once. */
  private readonly reported = new Map<string, string>();

  constructor(
    private readonly client: Etcd3,
    readonly prefix: string,
  ) {
    super();
  }

  configKey(): string {
    return `${this.prefix.replace(/\/+$/, '')}/config`;
  }

  async getConfig(): Promise<string | null> {
    return this.client
      .get(this.configKey())
      .string()
      .catch(explainDenied('read', this.configKey()));
  }

  /** Replaces the in-memory set with a fresh list; returns the revision it reflects. */
  async list(): Promise<string> {
    const res = await this.client
      .getAll()
      .prefix(subnetsPrefix(this.prefix))
      .exec()
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
    const w = this.client
      .watch()
      .prefix(subnetsPrefix(this.prefix))
      .startRevision(String(BigInt(rev) + 1n))
      .watcher();
    this.watcher = w;
    w.on('data', (res) => {
      for (const ev of res.events) this.apply(ev.kv, ev.type === 'Delete');
      if (res.events.length > 0)
        this.emit(
          'change',
          res.events.map((ev) => ev.kv.key.toString()),
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
      // etcd3 has already dropped a cancelled watcher; cancelling it again makes the library
      // throw "Failed to find watcher" from inside its stream handler.
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

  private apply(kv: IKeyValue, deleted: boolean): void {
    const key = kv.key.toString();
    const subnets = keyToSubnets(this.prefix, key);
    if (!subnets) return;
    const { subnet, subnet6 } = subnets;
    if (deleted) {
      this.leases.delete(key);
      this.reported.delete(key);
      return;
    }
    const value = kv.value.toString();
    try {
      const attrs = decodeLease(value);
      this.leases.set(key, {
        key,
        subnet,
        ...(subnet6 ? { subnet6 } : {}),
        attrs,
        etcdLease: kv.lease,
        modRevision: kv.mod_revision,
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
    const { ID } = await this.client.leaseClient.leaseGrant({ TTL: ttlSeconds, ID: 0 });
    const res = await this.client
      .if(key, 'Create', '==', 0)
      .then(this.client.put(key).value(value).lease(ID))
      .commit()
      .catch(explainDenied('write', key));
    if (res.succeeded) return { subnet, subnet6, key, etcdLease: ID, value };
    await this.client.leaseClient.leaseRevoke({ ID }).catch(() => undefined);
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
      .get(existing.key)
      .exec()
      .catch(explainDenied('read', existing.key));
    const kv = current.kvs[0];
    if (!kv || kv.mod_revision !== existing.modRevision) return undefined;
    let id = kv.lease;
    const reservation = id === '0';
    if (!reservation) {
      const ttl = await this.client.leaseClient.leaseTimeToLive({ ID: id, keys: false });
      if (Number(ttl.TTL) <= 0)
        id = (await this.client.leaseClient.leaseGrant({ TTL: ttlSeconds, ID: 0 })).ID;
    }
    if (kv.value.toString() !== value || id !== kv.lease) {
      const put = this.client.put(existing.key).value(value);
      if (!reservation) put.lease(id);
      const res = await this.client
        .if(existing.key, 'Mod', '==', kv.mod_revision)
        .then(put)
        .commit()
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
    const put = this.client.put(held.key).value(value);
    if (held.etcdLease !== '0') put.lease(held.etcdLease);
    const res = await this.client
      .if(held.key, 'Create', '>', 0)
      .then(put)
      .commit()
      .catch(explainDenied('write', held.key));
    return res.succeeded ? { ...held, value } : undefined;
  }

  /** One keep-alive round trip; resolves the remaining TTL in seconds (0 = the lease is gone). */
  keepAlive(id: string): Promise<number> {
    return keepAliveOnce(this.client, id);
  }

  async close(): Promise<void> {
    this.closed = true;
    const w = this.watcher;
    this.watcher = undefined;
    if (w) await w.cancel().catch(() => undefined);
  }
}
