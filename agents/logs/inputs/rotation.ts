/**
 * Which json-file log to read next, pure. dockerd rotates `<id>-json.log` (max-size/max-file)
 * by renaming it to `.log.1` (shifting `.1` to `.2` …, deleting the oldest) and starting a new
 * `.log`; with `compress=true` the rotated files become `.log.N.gz`. A file keeps its inode
 * through renames, so the checkpoint's inode (plus first-line fingerprint) finds it again.
 * Files older than the checkpointed one were read already; if it is gone, every file left is
 * newer (rotation deletes oldest first), and what was not read of it is skipped and counted.
 * Compressed rotations are not read: refused with their size counted.
 */
import type { Checkpoint } from './checkpoint.js';

export interface LogFile {
  name: string;
  /** 0 for `<id>-json.log`, N for `.log.N` (and `.log.N.gz`). */
  index: number;
  inode: number;
  size: number;
  /** Fingerprint of the first line ("" if empty). */
  fp: string;
  compressed: boolean;
}

export interface StartDecision {
  /** The file to read from, or undefined when there is no readable file yet. */
  file?: LogFile;
  offset: number;
  seq: number;
  /** The checkpoint's dedup id when resuming the same file; undefined = a new file. */
  src?: string;
  /** Bytes known to be lost (rotated away unread, or compressed). */
  skipped: number;
  /** Why bytes were skipped, for the one log line. */
  reasons: string[];
}

const byAge = (files: LogFile[]) => [...files].sort((a, b) => b.index - a.index);

/** `<id>-json.log[.N][.gz]` → index and compressed, or undefined if it is not one of ours. */
export function parseLogName(
  id: string,
  name: string,
): { index: number; compressed: boolean } | undefined {
  const base = `${id}-json.log`;
  if (name === base) return { index: 0, compressed: false };
  if (!name.startsWith(`${base}.`)) return undefined;
  const m = /^(\d+)(\.gz)?$/.exec(name.slice(base.length + 1));
  return m ? { index: Number(m[1]), compressed: m[2] !== undefined } : undefined;
}

/** Docker's `max-size` log-opt ("50m", "200k", "1g", bytes) → bytes; undefined if unset/bad. */
export function parseMaxSize(v: string | undefined): number | undefined {
  const m = /^(\d+(?:\.\d+)?)([kmg]?)b?$/i.exec(v?.trim() ?? '');
  if (!m) return undefined;
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase() as '' | 'k'];
  return Math.floor(Number(m[1]) * mult);
}

/**
 * Where to start reading a container's logs, given its checkpoint and the files present.
 * `maxSize` (the container's max-size) bounds from below what a vanished file held: it was
 * rotated when it reached that size.
 */
export function decideStart(
  cp: Checkpoint | undefined,
  files: LogFile[],
  maxSize?: number,
): StartDecision {
  const aged = byAge(files);
  const reasons: string[] = [];
  let skipped = 0;
  if (cp) {
    const same = aged.find(
      (f) => !f.compressed && f.inode === cp.inode && (cp.fp === '' || f.fp === cp.fp),
    );
    if (same && same.size >= cp.offset)
      return { file: same, offset: cp.offset, seq: cp.seq, src: cp.src, skipped: 0, reasons };
    const lost = Math.max(0, Math.max(cp.size, maxSize ?? 0) - cp.offset);
    skipped += lost;
    reasons.push(
      `the checkpointed file (inode ${cp.inode}) was rotated away before it was read to its end: at least ${lost} bytes lost (rotation outran the agent)`,
    );
  }
  const first = aged.findIndex((f) => !f.compressed);
  const refused = aged.filter((f, i) => f.compressed && (first < 0 || i < first));
  for (const f of refused) {
    skipped += f.size;
    reasons.push(`${f.name} is compressed (compress=true): not read, ${f.size} bytes skipped`);
  }
  // Without a checkpoint, compressed files older than the first plain one are history we were
  // never going to have; with one, they are newer than what we read, so they are lost too.
  return { ...(first >= 0 ? { file: aged[first]! } : {}), offset: 0, seq: 1, skipped, reasons };
}

/**
 * The file after `inode` (finished: read to its end after a rotation): the next newer one,
 * skipping compressed ones (returned in `refused`). undefined = `inode` is still the newest.
 */
export function nextFile(files: LogFile[], inode: number): { file?: LogFile; refused: LogFile[] } {
  const aged = byAge(files);
  const i = aged.findIndex((f) => f.inode === inode && !f.compressed);
  // Gone (deleted as the oldest): every file present is newer.
  const newer = i < 0 ? aged : aged.slice(i + 1);
  const refused: LogFile[] = [];
  for (const f of newer) {
    if (!f.compressed) return { file: f, refused };
    refused.push(f);
  }
  return { refused };
}
