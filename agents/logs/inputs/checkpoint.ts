/**
 * The file input's checkpoints, pure: per container, the log file (inode + a fingerprint of its
 * first line, so a recycled inode is not mistaken for it), the byte offset up to which the
 * aggregator has acked every record, the seq of the next record and the dedup id of the file
 * (`src`). Resuming at (offset, seq) re-reads exactly the unacked records with the seqs they had,
 * so the aggregator drops any it already stored. `size` is the file size last seen, so records
 * lost to a rotation that outran a stopped agent can be counted.
 *
 * File: `{"version":1,"containers":{"<id>":{"inode":…,"fp":"…","src":"…","offset":…,"seq":…,"size":…}}}`
 */
export interface Checkpoint {
  inode: number;
  /** Fingerprint of the file's first line ("" while the file was empty). */
  fp: string;
  /** Dedup id of this file's records at the aggregator. */
  src: string;
  offset: number;
  seq: number;
  size: number;
}

export type Checkpoints = Record<string, Checkpoint>;

export class CheckpointError extends Error {
  override name = 'CheckpointError';
}

export function encodeCheckpoints(c: Checkpoints): string {
  return `${JSON.stringify({ version: 1, containers: c })}\n`;
}

const isCount = (v: unknown): v is number =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Parses a checkpoint file; a bad entry is an error naming it (the caller logs and starts over). */
export function decodeCheckpoints(text: string): Checkpoints {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new CheckpointError(`not JSON: ${(err as Error).message}`);
  }
  const o = v as { version?: unknown; containers?: unknown };
  if (typeof o !== 'object' || o === null || o.version !== 1)
    throw new CheckpointError('"version" must be 1');
  if (typeof o.containers !== 'object' || o.containers === null || Array.isArray(o.containers))
    throw new CheckpointError('"containers" must be an object');
  const out: Checkpoints = {};
  for (const [id, raw] of Object.entries(o.containers as Record<string, unknown>)) {
    const e = raw as Partial<Checkpoint>;
    if (
      typeof e !== 'object' ||
      e === null ||
      !isCount(e.inode) ||
      !isCount(e.offset) ||
      !isCount(e.size) ||
      !isCount(e.seq) ||
      e.seq < 1 ||
      typeof e.fp !== 'string' ||
      typeof e.src !== 'string' ||
      e.src === ''
    )
      throw new CheckpointError(
        `container ${id}: needs inode, offset, size (integers ≥ 0), seq ≥ 1, fp and src strings`,
      );
    out[id] = {
      inode: e.inode,
      fp: e.fp,
      src: e.src,
      offset: e.offset,
      seq: e.seq,
      size: e.size,
    };
  }
  return out;
}
