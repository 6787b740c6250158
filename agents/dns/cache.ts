/**
 * Encoded answers keyed by the request's question bytes plus EDNS/DO (wire.ts `Query.key`), so
 * case-exact: a 0x20-randomised name gets its own entry with its own spelling echoed. Cleared
 * whole on every zone change (the watch calls `clear`); bounded by dropping everything when
 * full, which keeps the hit path to one Map lookup.
 */
import type { Spread } from './spread.js';
import type { Slot } from './stats.js';

export interface CachedAnswer {
  msg: Buffer;
  rcode: number;
  /** Its queries-by-type-and-rcode counter, so a hit counts with one increment. */
  slot: Slot;
  /** Set when its records are reordered per answer (--round-robin). */
  spread?: Spread;
  /** Answers cut to a client's UDP limit, by limit. */
  cut?: Map<number, Buffer>;
}

export class AnswerCache {
  private map = new Map<string, CachedAnswer>();
  /** Bumped by clear(): answers computed before a change must not be stored after it. */
  generation = 0;

  constructor(private readonly maxEntries = 50_000) {}

  get size(): number {
    return this.map.size;
  }

  get(key: string): CachedAnswer | undefined {
    return this.map.get(key);
  }

  /** Stores `a` unless the zone changed since `generation` was read. */
  set(key: string, a: CachedAnswer, generation: number): void {
    if (generation !== this.generation) return;
    if (this.map.size >= this.maxEntries) this.map.clear();
    this.map.set(key, a);
  }

  clear(): void {
    this.generation++;
    this.map.clear();
  }
}
