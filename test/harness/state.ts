/**
 * What a harness run created, written to /run/flotilla-harness/<id>.json before anything is
 * created and updated as things are added, so that teardown — on success, failure, Ctrl-C, or
 * by a later run after a crash — removes exactly what this run made: its PIDs, its namespaces
 * (by their unique names), its mounts and its temp dir. Teardown is synchronous so it can run
 * from an 'exit' handler.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { alive } from './proc.js';

export const STATE_DIR = '/run/flotilla-harness';
/** Namespaces and links of every run are named `flt<6 hex>-…` (or `fltdemo-…` for the local cluster). */
export const NAME_RE = /^flt([0-9a-f]{6}|demo)-/;

export interface RunState {
  id: string;
  ownerPid: number;
  /** The local cluster outlives the command that started it; sweeps leave it alone. */
  persistent: boolean;
  dir: string;
  subnet: string;
  namespaces: string[];
  /** Long-running processes in start order; stopped in reverse. */
  pids: { pid: number; what: string }[];
  hosts: { name: string; ip: string; dockerSocket?: string }[];
  etcdEndpoints: string[];
  /** Certificates of a secure etcd (cluster option secureEtcd). */
  etcdPki?: string;
  /** Multi-member etcd: each member's namespace and address (its PID is in `pids`). */
  etcdMembers?: { name: string; ns: string; ip: string; pid?: number }[];
  /** Members currently cut off from their peers by iptables rules inside their namespace. */
  partitioned?: string[];
}

export function statePath(id: string): string {
  return join(STATE_DIR, `${id}.json`);
}

export function saveState(s: RunState): void {
  mkdirSync(STATE_DIR, { recursive: true });
  writeFileSync(statePath(s.id), JSON.stringify(s, null, 2));
}

export function loadState(id: string): RunState | undefined {
  try {
    return JSON.parse(readFileSync(statePath(id), 'utf8')) as RunState;
  } catch {
    return undefined;
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function killAndWait(pids: number[], graceMs: number): void {
  const live = pids.filter(alive);
  for (const pid of live) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      /* gone */
    }
  }
  const deadline = Date.now() + graceMs;
  while (live.some(alive) && Date.now() < deadline) sleepSync(50);
  for (const pid of live.filter(alive)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  const hard = Date.now() + 3000;
  while (live.some(alive) && Date.now() < hard) sleepSync(20);
}

/** PIDs whose command line or working directory lies inside `dir` (containerd, shims of this run). */
function pidsUsingDir(dir: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8');
      let cwd = '';
      try {
        cwd = readlinkSync(`/proc/${name}/cwd`);
      } catch {
        /* kernel thread or gone */
      }
      if (cmd.includes(dir + '/') || cwd.startsWith(dir + '/') || cwd === dir)
        out.push(Number(name));
    } catch {
      /* gone */
    }
  }
  return out;
}

function unmountUnder(dir: string): void {
  let lines: string[] = [];
  try {
    lines = readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
  } catch {
    return;
  }
  const points = lines
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => !!p && (p === dir || p.startsWith(dir + '/')))
    .sort((a, b) => b.length - a.length);
  for (const p of points) spawnSync('umount', ['-l', p], { stdio: 'ignore' });
}

export function listNamespaces(): string[] {
  try {
    return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
      .split('\n')
      .map((l) => l.split(' ')[0]!)
      .filter((n) => n !== '');
  } catch {
    return [];
  }
}

/** Removes everything a run created. Idempotent. */
export function teardown(s: RunState): void {
  killAndWait(
    [...s.pids].reverse().map((p) => p.pid),
    10_000,
  );
  if (s.dir && s.dir.length > 5) {
    killAndWait(pidsUsingDir(s.dir), 3000);
    unmountUnder(s.dir);
  }
  const prefix = `flt${s.id}-`;
  for (const ns of listNamespaces()) {
    if (ns.startsWith(prefix) || s.namespaces.includes(ns))
      spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  }
  const rootLink = `flt${s.id}r`;
  spawnSync('ip', ['link', 'del', rootLink], { stdio: 'ignore' });
  if (s.dir && s.dir.length > 5 && existsSync(s.dir)) {
    spawnSync('rm', ['-rf', '--one-file-system', s.dir], { stdio: 'ignore' });
    if (existsSync(s.dir)) rmSync(s.dir, { recursive: true, force: true });
  }
  try {
    unlinkSync(statePath(s.id));
  } catch {
    /* already gone */
  }
}

/**
 * Removes leftovers of crashed earlier runs: states whose owner is dead (never persistent ones),
 * and namespaces with our prefix that no state claims.
 */
export function sweepLeftovers(): void {
  const claimed = new Set<string>();
  let files: string[] = [];
  try {
    files = readdirSync(STATE_DIR).filter((f) => f.endsWith('.json'));
  } catch {
    /* none yet */
  }
  for (const f of files) {
    const s = loadState(f.slice(0, -5));
    if (!s) continue;
    if (s.persistent || alive(s.ownerPid)) {
      claimed.add(`flt${s.id}-`);
      continue;
    }
    teardown(s);
  }
  for (const ns of listNamespaces()) {
    const m = NAME_RE.exec(ns);
    if (m && !claimed.has(`flt${m[1]}-`))
      spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  }
}

const exitCleanups = new Set<() => void>();
let exitHandlersInstalled = false;

/**
 * Runs `fn` (synchronous) when this process exits, also on SIGINT/SIGTERM/SIGHUP (which would
 * otherwise end it without an 'exit' event). Returns a function that unregisters it.
 */
export function onProcessExit(fn: () => void): () => void {
  exitCleanups.add(fn);
  if (!exitHandlersInstalled) {
    exitHandlersInstalled = true;
    const runAll = () => {
      for (const f of [...exitCleanups]) {
        exitCleanups.delete(f);
        try {
          f();
        } catch {
          /* keep cleaning the rest */
        }
      }
    };
    process.on('exit', runAll);
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.once(sig, () => {
        runAll();
        process.exit(sig === 'SIGINT' ? 130 : 143);
      });
    }
  }
  return () => exitCleanups.delete(fn);
}
