/**
 * How `logs` finds the aggregator without --server: the aggregator keeps its query address in
 * etcd at AGGREGATOR_KEY, under a lease (gone within the TTL after it stops), as JSON
 * `{"query":"http://10.0.0.1:24241","forward":"10.0.0.1:24240","host":"h1"}`. The etcd client
 * is loaded only when needed (it takes about a second).
 */
import { networkInterfaces } from 'node:os';
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
 * Announces the aggregator under a lease and keeps it announced (retrying while etcd is away);
 * the returned stop revokes it. Never throws: the aggregator works without etcd.
 */
export async function announceAggregator(
  s: EtcdSettings,
  rec: AggregatorRecord,
  log: Logger,
  ttl = 15,
): Promise<() => Promise<void>> {
  const [{ createEtcd }, { Announcement }] = await Promise.all([
    import('../common/etcd.js'),
    import('../common/announcement.js'),
  ]);
  const client = createEtcd(s);
  let a: InstanceType<typeof Announcement> | undefined;
  let stopped = false;
  let retry: NodeJS.Timeout | undefined;
  let warned = false;
  const attempt = () => {
    const mine = new Announcement(client, AGGREGATOR_KEY, JSON.stringify(rec), ttl, log);
    a = mine;
    mine.start().then(
      () => log.info({ key: AGGREGATOR_KEY, query: rec.query }, 'aggregator announced in etcd'),
      (err: unknown) => {
        void mine.stop(); // no retry loop of its own: this one backs off
        if (stopped) return;
        (warned ? log.debug : log.warn).call(
          log,
          { key: AGGREGATOR_KEY, err: errorMessage(err) },
          'cannot announce the aggregator in etcd (logs needs --server meanwhile); retrying every 5 s',
        );
        warned = true;
        retry = setTimeout(attempt, 5000);
        retry.unref();
      },
    );
  };
  attempt();
  return async () => {
    stopped = true;
    clearTimeout(retry);
    await a?.stop();
    client.close();
  };
}
