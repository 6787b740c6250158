/**
 * Process helpers for the harness: run a command to completion, start a tracked long-running
 * process, and stop processes by the PIDs we started (never by name).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command; never throws for a non-zero exit (the caller reads `code`). */
export function run(
  cmd: string[],
  opts: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd[0]!,
      cmd.slice(1),
      {
        maxBuffer: 64 * 1024 * 1024,
        timeout: opts.timeoutMs ?? 60_000,
        env: opts.env ?? process.env,
      },
      (err, stdout, stderr) => {
        if (err && typeof (err as NodeJS.ErrnoException).code === 'string') {
          reject(new Error(`cannot run ${cmd[0]}: ${err.message}`));
          return;
        }
        const code = err ? ((err as { code?: number }).code ?? 1) : 0;
        resolve({ code: typeof code === 'number' ? code : 1, stdout, stderr });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** Runs a command and throws with its stderr when it fails. */
export async function must(
  cmd: string[],
  opts: { input?: string; timeoutMs?: number } = {},
): Promise<string> {
  const r = await run(cmd, opts);
  if (r.code !== 0)
    throw new Error(
      `${cmd.join(' ')} failed (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim()}`,
    );
  return r.stdout;
}

/** True while the process exists and is not a zombie (an exited child not yet reaped). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Sends SIGTERM, waits up to `graceMs`, then SIGKILL. Resolves when the PID is gone. */
export async function stopPid(pid: number, graceMs = 5000): Promise<void> {
  if (!alive(pid)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (alive(pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
    const hard = Date.now() + 2000;
    while (alive(pid) && Date.now() < hard) await new Promise((r) => setTimeout(r, 20));
  }
}

export interface StartedProcess {
  child: ChildProcess;
  pid: number;
  logFile: string;
  /** Resolves with the exit code (or signal name) when the process ends. */
  exited: Promise<number | string>;
}

/**
 * Starts a long-running process with stdout+stderr appended to `logFile`, or piped when
 * `pipe` is set (the caller then reads child.stdout / child.stderr).
 */
export function startProcess(
  cmd: string[],
  opts: {
    logFile: string;
    env?: NodeJS.ProcessEnv;
    pipe?: boolean;
    cwd?: string;
    detached?: boolean;
  },
): StartedProcess {
  const fd = openSync(opts.logFile, 'a');
  const child = spawn(cmd[0]!, cmd.slice(1), {
    stdio: ['ignore', opts.pipe ? 'pipe' : fd, opts.pipe ? 'pipe' : fd],
    env: opts.env ?? process.env,
    cwd: opts.cwd,
    detached: opts.detached ?? false,
  });
  closeSync(fd);
  // A detached process (the local cluster's daemons) outlives this one.
  if (opts.detached) child.unref();
  if (child.pid === undefined) throw new Error(`cannot start ${cmd[0]}`);
  const exited = new Promise<number | string>((resolve) => {
    child.on('exit', (code, signal) => resolve(code ?? signal ?? -1));
    child.on('error', () => resolve(-1));
  });
  return { child, pid: child.pid, logFile: opts.logFile, exited };
}

/** Polls `check` until it returns a truthy value or `timeoutMs` passes (then throws `what`). */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 20_000,
  everyMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      lastErr = err;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? `: ${String(lastErr)}` : ''}`,
  );
}

/** `p`, or a rejection naming `what` once `ms` pass first: a bound for waits with no deadline of their own. */
export function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}
