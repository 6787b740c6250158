/**
 * Query counters kept as plain numbers on the hot path and turned into Prometheus metrics only
 * when /metrics is scraped (prom-client label hashing per query would cost more than the
 * cache hit itself).
 */
import type { Registry } from 'prom-client';

/** Latency buckets in seconds. */
export const LATENCY_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.005, 0.025, 0.1, 0.5, 2];

export const RCODE_NAMES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'];
const TYPE_NAMES: Record<number, string> = {
  1: 'A',
  2: 'NS',
  5: 'CNAME',
  6: 'SOA',
  12: 'PTR',
  15: 'MX',
  16: 'TXT',
  28: 'AAAA',
  33: 'SRV',
  255: 'ANY',
};

export function typeLabel(qtype: number): string {
  return TYPE_NAMES[qtype] ?? 'other';
}

/** One queries-by-type-and-rcode counter; cached answers hold theirs, so a hit is one increment. */
export interface Slot {
  n: number;
}

export class DnsStats {
  /** "type|rcode" → counter. */
  readonly queries = new Map<string, Slot>();
  cacheHits = 0;
  cacheMisses = 0;
  forwarded = 0;
  forwardFailures = 0;
  malformed = 0;
  readonly buckets = new Array<number>(LATENCY_BUCKETS.length).fill(0);
  latencyCount = 0;
  latencySum = 0;

  slot(type: string, rcode: number): Slot {
    const k = `${type}|${RCODE_NAMES[rcode] ?? String(rcode)}`;
    let s = this.queries.get(k);
    if (!s) {
      s = { n: 0 };
      this.queries.set(k, s);
    }
    return s;
  }

  count(type: string, rcode: number, seconds: number): void {
    this.hit(this.slot(type, rcode), seconds);
  }

  hit(slot: Slot, seconds: number): void {
    slot.n++;
    this.latencyCount++;
    this.latencySum += seconds;
    for (let i = 0; i < LATENCY_BUCKETS.length; i++)
      if (seconds <= LATENCY_BUCKETS[i]!) {
        this.buckets[i]!++;
        break;
      }
  }

  total(): number {
    let n = 0;
    for (const v of this.queries.values()) n += v.n;
    return n;
  }
}

type Sample = { value: number; labels: Record<string, string | number>; metricName?: string };

/** Registers the stats (plus `extra` gauges/counters read at scrape time) as flotilla_dns_* metrics. */
export function registerStats(
  registry: Registry,
  stats: DnsStats,
  extra: Record<string, { help: string; read: () => number; counter?: boolean }> = {},
): void {
  const metric = (name: string, help: string, type: string, values: () => Sample[]) =>
    registry.registerMetric({
      name,
      help,
      type,
      aggregator: 'sum',
      get: () => Promise.resolve({ name, help, type, aggregator: 'sum', values: values() }),
      reset: () => undefined,
    } as unknown as Parameters<Registry['registerMetric']>[0]);
  const counter = (name: string, help: string, read: () => number) =>
    metric(name, help, 'counter', () => [{ value: read(), labels: {} }]);
  metric('flotilla_dns_queries_total', 'DNS queries answered, by type and rcode', 'counter', () =>
    [...stats.queries].map(([k, slot]) => {
      const [type, rcode] = k.split('|');
      return { value: slot.n, labels: { type: type!, rcode: rcode! } };
    }),
  );
  counter(
    'flotilla_dns_cache_hits_total',
    'answers sent from the encoded-answer cache',
    () => stats.cacheHits,
  );
  counter(
    'flotilla_dns_cache_misses_total',
    'answers computed (not in cache)',
    () => stats.cacheMisses,
  );
  counter('flotilla_dns_forwarded_total', 'queries forwarded upstream', () => stats.forwarded);
  counter(
    'flotilla_dns_forward_failures_total',
    'forwarded queries no upstream answered (SERVFAIL)',
    () => stats.forwardFailures,
  );
  counter('flotilla_dns_malformed_total', 'malformed packets dropped', () => stats.malformed);
  metric(
    'flotilla_dns_query_duration_seconds',
    'time from receiving a query to sending its answer',
    'histogram',
    () => {
      const out: Sample[] = [];
      let acc = 0;
      LATENCY_BUCKETS.forEach((le, i) => {
        acc += stats.buckets[i]!;
        out.push({
          value: acc,
          labels: { le },
          metricName: 'flotilla_dns_query_duration_seconds_bucket',
        });
      });
      out.push({
        value: stats.latencyCount,
        labels: { le: '+Inf' },
        metricName: 'flotilla_dns_query_duration_seconds_bucket',
      });
      out.push({
        value: stats.latencySum,
        labels: {},
        metricName: 'flotilla_dns_query_duration_seconds_sum',
      });
      out.push({
        value: stats.latencyCount,
        labels: {},
        metricName: 'flotilla_dns_query_duration_seconds_count',
      });
      return out;
    },
  );
  for (const [name, g] of Object.entries(extra))
    metric(`flotilla_dns_${name}`, g.help, g.counter ? 'counter' : 'gauge', () => [
      { value: g.read(), labels: {} },
    ]);
}
