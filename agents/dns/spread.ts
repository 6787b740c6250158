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
  /** SRV priority and weight of each record (weighted only). */
  priority: number[];
  weight: number[];
  /** Answers given so far (rotate). */
  next: number;
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
  if (type === T.SRV && from === 0) return { from, to: an, kind: 'weighted' };
  return null;
}

/**
 * The spread plan of an encoded answer: null when it has fewer than two A/AAAA or SRV records.
 * When a compression pointer leads into the records (an SRV target that a glue record's name
 * points at), `reencode(lo)` must return the same answer encoded with no name compressed to
 * an offset at or past `lo`; the plan then belongs to that message.
 */
export function planSpread(
  msg: Buffer,
  reencode: (lo: number) => Buffer,
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
          priority: weighted ? run.map((s) => msg.readUInt16BE(s.rdata)) : [],
          weight: weighted ? run.map((s) => msg.readUInt16BE(s.rdata + 2)) : [],
          next: 0,
        },
      };
    }
    msg = reencode(lo);
  }
  return { msg, plan: null };
}

/**
 * RFC 2782's order: by priority, then within each priority repeatedly a random pick with
 * probability proportional to weight (weight 0 only once no weighted record is left).
 */
export function srvOrder(
  priority: number[],
  weight: number[],
  rnd: () => number = Math.random,
): number[] {
  const idx = priority.map((_, i) => i).sort((a, b) => priority[a]! - priority[b]! || a - b);
  const out: number[] = [];
  for (let s = 0; s < idx.length;) {
    let e = s;
    while (e < idx.length && priority[idx[e]!] === priority[idx[s]!]) e++;
    const group = idx.slice(s, e);
    while (group.length > 1) {
      let sum = 0;
      for (const i of group) sum += weight[i]!;
      let pick = 0;
      if (sum > 0) {
        let r = rnd() * sum;
        for (; pick < group.length - 1; pick++) {
          r -= weight[group[pick]!]!;
          if (r < 0) break;
        }
        while (weight[group[pick]!] === 0 && pick > 0) pick--;
      }
      out.push(group.splice(pick, 1)[0]!);
    }
    out.push(group[0]!);
    s = e;
  }
  return out;
}

/** The order of this answer's records under the plan (advances a rotation). */
export function nextOrder(plan: Spread, rnd: () => number = Math.random): number[] {
  const n = plan.starts.length;
  if (plan.kind === 'weighted') return srvOrder(plan.priority, plan.weight, rnd);
  const k = plan.next++ % n;
  if (plan.next >= n) plan.next = 0;
  const order = new Array<number>(n);
  for (let i = 0; i < n; i++) order[i] = (k + i) % n;
  return order;
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
