/**
 * The probes behind health checks, the thin I/O edge of checker.ts: one HTTP GET (2xx and 3xx
 * pass, as Consul and registrator count them), one TCP connect, or one `sh -c` command (exit 0
 * passes). Each resolves — never rejects — within `timeoutMs` with whether it passed and a
 * short reason, and leaves nothing running behind it.
 */
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import type { CheckTarget } from './health.js';

export interface ProbeResult {
  ok: boolean;
  /** "HTTP 200", "connection refused", "exit 1", "timed out after 1000 ms", … */
  detail: string;
}

export type Probe = (target: CheckTarget, timeoutMs: number) => Promise<ProbeResult>;

async function httpProbe(url: string, timeoutMs: number): Promise<ProbeResult> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'manual' });
    await res.body?.cancel();
    return { ok: res.status >= 200 && res.status < 400, detail: `HTTP ${res.status}` };
  } catch (err) {
    const e = err as { name?: string; cause?: { code?: string; message?: string } };
    if (e.name === 'TimeoutError') return { ok: false, detail: `timed out after ${timeoutMs} ms` };
    return { ok: false, detail: e.cause?.code ?? e.cause?.message ?? String(err) };
  }
}

function tcpProbe(host: string, port: number, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const sock = connect({ host, port });
    const done = (r: ProbeResult) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(r);
    };
    const timer = setTimeout(
      () => done({ ok: false, detail: `timed out after ${timeoutMs} ms` }),
      timeoutMs,
    );
    sock.once('connect', () => done({ ok: true, detail: 'connected' }));
    sock.once('error', (err: NodeJS.ErrnoException) =>
      done({ ok: false, detail: err.code ?? err.message }),
    );
  });
}

function cmdProbe(command: string, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    // Its own process group, so a timeout kills the command's children too.
    const child = spawn('sh', ['-c', command], { stdio: 'ignore', detached: true });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      resolve({ ok: false, detail: err.message });
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) resolve({ ok: false, detail: `timed out after ${timeoutMs} ms` });
      else resolve({ ok: code === 0, detail: signal ? `killed by ${signal}` : `exit ${code}` });
    });
  });
}

export const runProbe: Probe = (target, timeoutMs) => {
  switch (target.kind) {
    case 'http':
      return httpProbe(target.url, timeoutMs);
    case 'tcp':
      return tcpProbe(target.host, target.port, timeoutMs);
    case 'cmd':
      return cmdProbe(target.command, timeoutMs);
  }
};
