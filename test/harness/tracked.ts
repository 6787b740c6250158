/**
 * A run state for tests that start processes, dirs or namespaces outside `startCluster` (a
 * loopback etcd, daemons over loopback, a private namespace). Everything is recorded in
 * /run/flotilla-harness/<id>.json as it is created, removed by `stop()` or on exit, and swept by
 * any later run (`sweepLeftovers`) if this process dies first (SIGKILL, OOM, a runner timeout).
 *
 *   const run = startTrackedRun('logs-crash');   // run.dir is a fresh temp dir
 *   run.addPid(child.pid, 'logsd agent');
 *   const ns = run.namespace('k');               // `flt<id>-k`, swept by name as well
 *   run.stop();
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onProcessExit, saveState, sweepLeftovers, teardown, type RunState } from './state.js';

export interface TrackedRun {
  readonly id: string;
  readonly dir: string;
  addPid(pid: number, what: string): void;
  /** Records and returns the namespace name `flt<id>-<suffix>` (created by the caller). */
  namespace(suffix: string): string;
  /** Kills the recorded PIDs (reverse order), deletes the namespaces and the dir. Idempotent. */
  stop(): void;
}

export function startTrackedRun(label: string): TrackedRun {
  sweepLeftovers();
  const id = randomBytes(3).toString('hex');
  const dir = mkdtempSync(join(tmpdir(), `flt-${label}-`));
  const state: RunState = {
    id,
    ownerPid: process.pid,
    persistent: false,
    dir,
    subnet: '',
    namespaces: [],
    pids: [],
    hosts: [],
    etcdEndpoints: [],
  };
  saveState(state);
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    forget();
    teardown(state);
  };
  const forget = onProcessExit(stop);
  return {
    id,
    dir,
    addPid(pid, what) {
      state.pids.push({ pid, what });
      saveState(state);
    },
    namespace(suffix) {
      const name = `flt${id}-${suffix}`;
      state.namespaces.push(name);
      saveState(state);
      return name;
    },
    stop,
  };
}
