/**
 * Encoded answers keyed by the request's question bytes plus EDNS/DO (wire.ts `Query.key` and
 * `variant`), so
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
  /** One map per Query.variant (no EDNS, EDNS, EDNS + DO): the key stays one flat string. */
  private maps = [
    new Map<string, CachedAnswer>(),
    new Map<string, CachedAnswer>(),
    new Map<string, CachedAnswer>(),
  ];
  /** Bumped by clear(): answers computed before a change must not be stored after it. */
  generation = 0;

  constructor(private readonly maxEntries = 50_000) {}

  get size(): number {
    return this.maps[0]!.size + this.maps[1]!.size + this.maps[2]!.size;
  }

  get(key: string, variant: number): CachedAnswer | undefined {
    return this.maps[variant]!.get(key);
  }

  /** Stores `a` unless the zone changed since `generation` was read. */
  set(key: string, variant: number, a: CachedAnswer, generation: number): void {
    if (generation !== this.generation) return;
    if (this.size >= this.maxEntries) for (const m of this.maps) m.clear();
    this.maps[variant]!.set(key, a);
  }

  clear(): void {
    this.generation++;
    for (const m of this.maps) m.clear();
  }
}
