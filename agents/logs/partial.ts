/**
 * Reassembles lines Docker split (it cuts lines over 16 KiB into pieces marked
 * `partial_message`, `partial_id`, `partial_ordinal`, `partial_last`). Pure: feed entries in
 * stored order, get whole entries back. Pieces stay stored as they arrived (each one acked and
 * durable on its own); they are joined when read, so no half-line lives only in memory.
 * A group still unfinished `timeoutMs` after its first piece (or at the end of a history
 * read) is emitted with the pieces it has.
 */
import type { Entry, LogRecord } from './forward/codec.js';

const PARTIAL_KEYS = ['partial_message', 'partial_id', 'partial_ordinal', 'partial_last'];

interface Group {
  first: Entry;
  pieces: { ordinal: number; log: string }[];
  since: number;
}

const text = (v: unknown): string =>
  typeof v === 'string' ? v : Buffer.isBuffer(v) ? v.toString() : v === undefined ? '' : String(v);

export function isPartial(r: LogRecord): boolean {
  return text(r.partial_message) === 'true' && text(r.partial_id) !== '';
}

export class PartialAssembler {
  private readonly groups = new Map<string, Group>();

  constructor(private readonly timeoutMs = 5000) {}

  get pending(): number {
    return this.groups.size;
  }

  push(e: Entry, now = Date.now()): Entry[] {
    if (!isPartial(e.record)) return [e];
    const key = `${text(e.record.container_id)}/${text(e.record.partial_id)}`;
    let g = this.groups.get(key);
    if (!g) {
      g = { first: e, pieces: [], since: now };
      this.groups.set(key, g);
    }
    g.pieces.push({
      ordinal: Number(text(e.record.partial_ordinal)) || 0,
      log: text(e.record.log),
    });
    if (text(e.record.partial_last) !== 'true') return [];
    this.groups.delete(key);
    return [join(g)];
  }

  /** Emits groups older than the timeout (all of them when `all`). */
  flush(now = Date.now(), all = false): Entry[] {
    const out: Entry[] = [];
    for (const [key, g] of this.groups) {
      if (all || now - g.since >= this.timeoutMs) {
        this.groups.delete(key);
        out.push(join(g));
      }
    }
    return out;
  }
}

function join(g: Group): Entry {
  const record: LogRecord = { ...g.first.record };
  for (const k of PARTIAL_KEYS) delete record[k];
  record.log = g.pieces
    .sort((a, b) => a.ordinal - b.ordinal)
    .map((p) => p.log)
    .join('');
  return { time: g.first.time, record };
}
