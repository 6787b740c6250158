/**
 * Load spreading on the cached-answer fast path (--round-robin): which answer records of an
 * encoded answer may be reordered, and the per-query order. A/AAAA records after any CNAMEs
 * rotate by one position per answer (true round-robin: each of n addresses leads 1/n of the
 * answers); SRV records are ordered per query by priority, then within a priority by RFC 2782's
 * weighted random pick. The reorder moves the records' bytes in the copy a hit makes anyway, so
 * no answer is decoded or re-encoded per query. Pure apart from the random source.
 */
import { T } from './lookup.js';
import { patchHeader, pointsInto, recordSpans, type Query, type RRSpan } from './wire.js';

export interface Spread {
  kind: 'rotate' | 'weighted';
  /** Byte ranges of the records to reorder, contiguous from `lo` to `hi`. */
  starts: number[];
  ends: number[];
  lo: number;
  hi: number;
  /** SRV weight of each record, and the records grouped by priority (weighted only). */
  weight: number[];
  groups: number[][];
  /** Index of the record that leads the next answer (rotate); starts at random. */
  next: number;
  /** Scratch for nextOrder: no allocation per answer. */
  order: number[];
  pool: number[];
}

/** The reorderable run of answer records, or null when there is nothing to spread. */
function region(
  msg: Buffer,
  spans: RRSpan[],
): { from: number; to: number; kind: Spread['kind'] } | null {
  const an = msg.readUInt16BE(6);
  let from = 0;
  while (from < an && spans[from]!.type === T.CNAME) from++;
  if (an - from < 2) return null;
  const type = spans[from]!.type;
  for (let i = from; i < an; i++) if (spans[i]!.type !== type) return null;
  if (type === T.A || type === T.AAAA) return { from, to: an, kind: 'rotate' };
  if (type === T.SRV) return { from, to: an, kind: 'weighted' };
  return null;
}

/**
 * The spread plan of an encoded answer: null when it has fewer than two A/AAAA or SRV records.
 * When a compression pointer leads into the records (an SRV target that a glue record's name
 * points at), `reencode(lo)` must return the same answer encoded with no name compressed to
 * an offset at or past `lo`; the plan then belongs to that message. A rotation starts at a
 * random record: every new cache entry (after a zone change, or each spelling of a 0x20-
 * randomised name) would otherwise lead with the first record.
 */
export function planSpread(
  msg: Buffer,
  reencode: (lo: number) => Buffer,
  rnd: () => number = Math.random,
): { msg: Buffer; plan: Spread | null } {
  for (let attempt = 0; attempt < 2; attempt++) {
    const spans = recordSpans(msg);
    if (!spans) return { msg, plan: null };
    const r = region(msg, spans);
    if (!r) return { msg, plan: null };
    const run = spans.slice(r.from, r.to);
    const lo = run[0]!.start;
    const hi = run[run.length - 1]!.end;
    if (!pointsInto(msg, spans, lo, hi)) {
      const weighted = r.kind === 'weighted';
      return {
        msg,
        plan: {
          kind: r.kind,
          starts: run.map((s) => s.start),
          ends: run.map((s) => s.end),
          lo,
          hi,
          weight: weighted ? run.map((s) => msg.readUInt16BE(s.rdata + 2)) : [],
          groups: weighted ? srvGroups(run.map((s) => msg.readUInt16BE(s.rdata))) : [],
          next: Math.floor(rnd() * run.length),
          order: new Array<number>(run.length).fill(0),
          pool: new Array<number>(run.length).fill(0),
        },
      };
    }
    msg = reencode(lo);
  }
  return { msg, plan: null };
}

/** Record indexes grouped by SRV priority, lowest first, each group in stored order. */
export function srvGroups(priority: number[]): number[][] {
  const idx = priority.map((_, i) => i).sort((a, b) => priority[a]! - priority[b]! || a - b);
  const groups: number[][] = [];
  for (const i of idx) {
    const last = groups[groups.length - 1];
    if (last && priority[last[0]!] === priority[i]) last.push(i);
    else groups.push([i]);
  }
  return groups;
}

/**
 * RFC 2782's order into `out`: group by group, repeatedly a random pick with probability
 * proportional to weight (weight 0 only once no weighted record is left). `pool` is scratch.
 */
function weightedInto(
  groups: number[][],
  weight: number[],
  out: number[],
  pool: number[],
  rnd: () => number,
): number[] {
  let at = 0;
  for (const g of groups) {
    let left = g.length;
    let sum = 0;
    for (let i = 0; i < left; i++) {
      pool[i] = g[i]!;
      sum += weight[g[i]!]!;
    }
    while (left > 1) {
      let pick = 0;
      if (sum > 0) {
        let r = rnd() * sum;
        for (; pick < left - 1; pick++) {
          r -= weight[pool[pick]!]!;
          if (r < 0) break;
        }
        while (weight[pool[pick]!] === 0 && pick > 0) pick--;
      }
      const chosen = pool[pick]!;
      out[at++] = chosen;
      sum -= weight[chosen]!;
      for (let i = pick; i < left - 1; i++) pool[i] = pool[i + 1]!;
      left--;
    }
    out[at++] = pool[0]!;
  }
  return out;
}

/** RFC 2782's order of SRV records with these priorities and weights (indexes). */
export function srvOrder(
  priority: number[],
  weight: number[],
  rnd: () => number = Math.random,
): number[] {
  return weightedInto(srvGroups(priority), weight, new Array<number>(priority.length), [], rnd);
}

/**
 * The order of this answer's records under the plan, advancing its rotation. The array is the
 * plan's own, valid until the next call (spreadAnswer uses it at once).
 */
export function nextOrder(plan: Spread, rnd: () => number = Math.random): number[] {
  const n = plan.starts.length;
  if (plan.kind === 'weighted')
    return weightedInto(plan.groups, plan.weight, plan.order, plan.pool, rnd);
  const k = plan.next;
  plan.next = k + 1 >= n ? 0 : k + 1;
  for (let i = 0; i < n; i++) plan.order[i] = k + i < n ? k + i : k + i - n;
  return plan.order;
}

/**
 * A copy of the cached answer with its records in `order` and the request's ID, RD and CD bits:
 * what patchAnswer does, plus the reorder.
 */
export function spreadAnswer(cached: Buffer, plan: Spread, order: number[], q: Query): Buffer {
  const out = Buffer.allocUnsafe(cached.length);
  cached.copy(out, 0, 0, plan.lo);
  let at = plan.lo;
  for (const i of order) at += cached.copy(out, at, plan.starts[i]!, plan.ends[i]!);
  cached.copy(out, at, plan.hi);
  return patchHeader(out, cached, q);
}
