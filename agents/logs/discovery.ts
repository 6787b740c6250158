/**
 * How `logs` finds the aggregator without --server: the aggregator keeps its query address in
 * etcd at AGGREGATOR_KEY, under a lease (gone within the TTL after it stops), as JSON
 * `{"query":"http://10.0.0.1:24241","forward":"10.0.0.1:24240","host":"h1"}`. The etcd client
 * is loaded only when needed (it takes about a second).
 */
import { networkInterfaces } from 'node:os';
import type { Lease } from 'etcd3';
import type { Logger } from '../common/logger.js';
import type { EtcdSettings } from '../common/etcd.js';
import { errorMessage } from '../common/errors.js';

export const AGGREGATOR_KEY = '/flotilla/logs/aggregator';

export interface AggregatorRecord {
  query: string;
  forward: string;
  host: string;
}

/** The announced query URL, or undefined (nothing announced, etcd unreachable within 3 s). */
export async function discoverAggregator(s: EtcdSettings): Promise<string | undefined> {
  const { createEtcd } = await import('../common/etcd.js');
  const client = createEtcd(s);
  let timer: NodeJS.Timeout | undefined;
  try {
    const text = await Promise.race([
      client.get(AGGREGATOR_KEY).string(),
      new Promise<null>((resolve) => {
        timer = setTimeout(() => resolve(null), 3000);
      }),
    ]);
    if (!text) return undefined;
    const rec = JSON.parse(text) as Partial<AggregatorRecord>;
    return typeof rec.query === 'string' ? rec.query : undefined;
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
    client.close();
  }
}

/** An address others can reach for a listener bound to `host` (0.0.0.0 → first non-loopback IPv4). */
export function advertisedHost(host: string): string {
  if (host !== '0.0.0.0' && host !== '::' && host !== '') return host;
  for (const list of Object.values(networkInterfaces()))
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  return '127.0.0.1';
}

/**
 * Announces the aggregator under a lease of `ttl` seconds and keeps it announced: the etcd3
 * client keeps the lease alive; when it is lost (etcd away longer than the TTL), or the first
 * write fails, a new lease and write follow every 5 s. The returned stop revokes the lease, so
 * the record is gone at once. Never throws: the aggregator works without etcd.
 */
export async function announceAggregator(
  s: EtcdSettings,
  rec: AggregatorRecord,
  log: Logger,
  ttl = 15,
): Promise<() => Promise<void>> {
  const { createEtcd } = await import('../common/etcd.js');
  const client = createEtcd(s);
  const value = JSON.stringify(rec);
  let lease: Lease | undefined;
  let stopped = false;
  let retry: NodeJS.Timeout | undefined;
  let warned = false;
  const again = (err: unknown) => {
    if (stopped) return;
    (warned ? log.debug : log.warn).call(
      log,
      { key: AGGREGATOR_KEY, err: errorMessage(err) },
      'cannot announce the aggregator in etcd (logs needs --server meanwhile); retrying every 5 s',
    );
    warned = true;
    clearTimeout(retry);
    retry = setTimeout(attempt, 5000);
    retry.unref();
  };
  function attempt(): void {
    const mine = client.lease(ttl, { autoKeepAlive: true });
    lease = mine;
    mine.on('lost', (err) => {
      if (lease !== mine) return;
      mine.release();
      again(err);
    });
    mine
      .put(AGGREGATOR_KEY)
      .value(value)
      .then(
        () => {
          warned = false;
          log.info({ key: AGGREGATOR_KEY, query: rec.query }, 'aggregator announced in etcd');
        },
        (err: unknown) => {
          if (lease === mine) lease = undefined;
          mine.release();
          again(err);
        },
      );
  }
  attempt();
  return async () => {
    stopped = true;
    clearTimeout(retry);
    const l = lease;
    lease = undefined;
    if (l)
      await Promise.race([
        l.revoke().catch(() => undefined),
        new Promise((resolve) => setTimeout(resolve, 3000)),
      ]);
    client.close();
  };
}
