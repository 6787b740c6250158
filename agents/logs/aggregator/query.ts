/**
 * Log queries (pure): which records of a service match host/container/time/regex filters, the
 * flat line shape the API returns, and "the last N matching, oldest first" over segments read
 * newest-first only as far as needed.
 */
import type { Entry } from '../forward/codec.js';
import { PartialAssembler } from '../partial.js';

export interface LogQuery {
  service: string;
  host?: string;
  /** Container name or id prefix. */
  container?: string;
  /** ms since epoch, inclusive. */
  since?: number;
  until?: number;
  grep?: RegExp;
  /** Last N matching records; undefined = all. */
  limit?: number;
}

/** One record as the API and CLI see it. */
export interface LogLine {
  time: string;
  ts: number;
  service: string;
  host: string;
  container: string;
  container_id: string;
  stream: string;
  log: string;
}

const s = (v: unknown): string =>
  typeof v === 'string'
    ? v
    : Buffer.isBuffer(v)
      ? v.toString()
      : v === undefined || v === null
        ? ''
        : String(v);

export function toLine(e: Entry): LogLine {
  const r = e.record;
  return {
    time: e.time.toISOString(),
    ts: e.time.toMillis(),
    service: s(r.service),
    host: s(r.host),
    container: s(r.container_name),
    container_id: s(r.container_id),
    stream: s(r.stream ?? r.source),
    log: s(r.log),
  };
}

export function matches(q: LogQuery, l: LogLine): boolean {
  if (q.host !== undefined && l.host !== q.host) return false;
  if (
    q.container !== undefined &&
    l.container !== q.container &&
    !l.container_id.startsWith(q.container)
  )
    return false;
  if (q.since !== undefined && l.ts < q.since) return false;
  if (q.until !== undefined && l.ts > q.until) return false;
  if (q.grep && !q.grep.test(l.log)) return false;
  return true;
}

export interface SegmentRange {
  tmin: number;
  tmax: number;
}

/**
 * Runs a history query over a service's segments (oldest first): reads the newest segments
 * back until `limit` matches are found, joins split lines, filters, and returns the matching
 * lines ordered by time (stable: arrival order breaks ties), the last `limit` of them.
 */
export function runQuery<S extends SegmentRange>(
  q: LogQuery,
  segments: S[],
  read: (seg: S, since?: number, until?: number) => Entry[],
): LogLine[] {
  const since = q.since ?? -Infinity;
  const until = q.until ?? Infinity;
  const inRange = segments.filter((x) => x.tmax >= since && x.tmin <= until);
  const chosen: { seg: S; lines: LogLine[] }[] = [];
  let found = 0;
  for (let i = inRange.length - 1; i >= 0; i--) {
    const seg = inRange[i]!;
    const asm = new PartialAssembler();
    const lines: LogLine[] = [];
    const take = (es: Entry[]) => {
      for (const e of es) {
        const l = toLine(e);
        if (matches(q, l)) lines.push(l);
      }
    };
    for (const e of read(seg, since, until)) take(asm.push(e, 0));
    take(asm.flush(0, true));
    chosen.unshift({ seg, lines });
    found += lines.length;
    if (q.limit !== undefined && found >= q.limit) break;
  }
  const all = chosen.flatMap((c) => c.lines);
  const sorted = all
    .map((l, i) => ({ l, i }))
    .sort((a, b) => a.l.ts - b.l.ts || a.i - b.i)
    .map((x) => x.l);
  return q.limit !== undefined ? sorted.slice(Math.max(0, sorted.length - q.limit)) : sorted;
}
