/**
 * The local cluster (run id 'demo': `npm start`, `npm run cluster`) is one shared resource on a
 * machine. Everything that brings it up or runs against it holds `flock /tmp/flotilla-demo.lock`;
 * tests take the same lock with `lockDemo`, so two never run at once.
 */
import { spawn } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';

export const DEMO_LOCK = '/tmp/flotilla-demo.lock';

/** The PIDs holding a flock(2) lock on the file with inode `ino` (from /proc/locks). */
export function flockHolders(locks: string, ino: number): number[] {
  const out: number[] = [];
  for (const line of locks.split('\n')) {
    // "10: FLOCK  ADVISORY  WRITE 1302 fe:00:2146344 0 EOF"
    const m = /^\d+:\s+FLOCK\s+\S+\s+\S+\s+(\d+)\s+[0-9a-f]+:[0-9a-f]+:(\d+)\s/.exec(line);
    if (m && Number(m[2]) === ino) out.push(Number(m[1]));
  }
  return out;
}

function ancestors(pid: number): number[] {
  const out: number[] = [];
  for (let p = pid; p > 1;) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${p}/stat`, 'utf8');
    } catch {
      break;
    }
    // pid (comm) state ppid …; comm may contain spaces and parentheses.
    p = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    out.push(p);
  }
  return out;
}

/**
 * Waits (at most `timeoutMs`) for the lock and holds it until the returned release() is called
 * or this process exits. Re-entrant: when an ancestor already holds it (`flock
 * /tmp/flotilla-demo.lock npm test`), it returns at once, since waiting would deadlock.
 */
export function lockDemo(timeoutMs = 600_000): Promise<() => void> {
  return lockFile(DEMO_LOCK, timeoutMs);
}

/** lockDemo on any file (tests use their own). */
export async function lockFile(file: string, timeoutMs: number): Promise<() => void> {
  try {
    statSync(file);
  } catch {
    writeFileSync(file, '');
  }
  const holders = flockHolders(readFileSync('/proc/locks', 'utf8'), statSync(file).ino);
  const mine = ancestors(process.pid);
  if (holders.some((h) => mine.includes(h))) return () => undefined;
  // flock(1) holds the lock while its child runs; the child exits when our pipe closes, so the
  // lock goes with this process however it ends.
  const child = spawn(
    'flock',
    [
      '-w',
      String(Math.ceil(timeoutMs / 1000)),
      file,
      'sh',
      '-c',
      'echo locked; exec cat >/dev/null',
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('locked')) resolve();
    });
    child.on('exit', (code) =>
      reject(new Error(`no lock on ${file} within ${timeoutMs} ms (flock exit ${code})`)),
    );
  });
  child.unref();
  (child.stdout as unknown as { unref?: () => void }).unref?.();
  return () => {
    child.stdin.end();
  };
}
