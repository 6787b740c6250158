/**
 * Debian's chromium, headless, driven over the DevTools protocol on a pipe
 * (`--remote-debugging-pipe`: no port to pick, no WebSocket library, no browser download).
 * Started for a cluster: its PID is in the run state and its profile lives in the run's dir, so
 * teardown removes both even if the test crashes.
 *
 *   const browser = await startChromium(cluster);
 *   const page = await browser.newPage();
 *   await page.goto('http://10.0.0.2:24241/');
 *   const n = await page.evaluate<number>('document.querySelectorAll("div").length');
 *   await browser.close();
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';

/** Where chromium's profile goes and who records its PID for teardown (a Cluster is one). */
export interface ProcessOwner {
  readonly dir: string;
  track(pid: number, what: string): void;
  untrack(pid: number): void;
}
import { stopPid } from './proc.js';

export const CHROMIUM = process.env['FLOTILLA_CHROMIUM'] ?? '/usr/bin/chromium';

const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--no-default-browser-check',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-breakpad',
  '--disable-crash-reporter',
  '--disable-dev-shm-usage',
  '--no-proxy-server',
  '--mute-audio',
  '--remote-debugging-pipe',
];

type Json = Record<string, unknown>;
interface Message {
  id?: number;
  method?: string;
  params?: Json;
  result?: Json;
  error?: { message: string };
  sessionId?: string;
}

/** A DevTools protocol connection: NUL-separated JSON messages over fds 3 (in) and 4 (out). */
class Cdp {
  private nextId = 1;
  private calls = new Map<number, { resolve: (r: Json) => void; reject: (e: Error) => void }>();
  private listeners = new Set<(m: Message) => void>();
  private closed: Error | undefined;

  constructor(
    private readonly out: Writable,
    input: Readable,
  ) {
    let rest = '';
    input.on('data', (d: Buffer) => {
      const parts = (rest + d.toString()).split('\0');
      rest = parts.pop() ?? '';
      for (const p of parts) if (p) this.dispatch(JSON.parse(p) as Message);
    });
    input.on('close', () => this.fail(new Error('chromium closed the DevTools pipe')));
    input.on('error', (e) => this.fail(e));
    out.on('error', (e) => this.fail(e));
  }

  private fail(err: Error): void {
    this.closed ??= err;
    for (const c of this.calls.values()) c.reject(err);
    this.calls.clear();
  }

  private dispatch(m: Message): void {
    if (m.id !== undefined) {
      const c = this.calls.get(m.id);
      this.calls.delete(m.id);
      if (m.error) c?.reject(new Error(`DevTools: ${m.error.message}`));
      else c?.resolve(m.result ?? {});
      return;
    }
    for (const l of [...this.listeners]) l(m);
  }

  send<T = Json>(method: string, params: Json = {}, sessionId?: string): Promise<T> {
    if (this.closed) return Promise.reject(this.closed);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.calls.set(id, { resolve: resolve as (r: Json) => void, reject });
      this.out.write(
        `${JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) })}\0`,
      );
    });
  }

  /** Resolves with the params of the next `method` event of `sessionId` (registered now). */
  once(method: string, sessionId: string, timeoutMs: number): Promise<Json> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.listeners.delete(l);
        reject(new Error(`no ${method} within ${timeoutMs} ms`));
      }, timeoutMs);
      const l = (m: Message) => {
        if (m.method !== method || m.sessionId !== sessionId) return;
        clearTimeout(timer);
        this.listeners.delete(l);
        resolve(m.params ?? {});
      };
      this.listeners.add(l);
    });
  }
}

/** One tab. */
export class Page {
  constructor(
    private readonly cdp: Cdp,
    readonly sessionId: string,
  ) {}

  /** Any DevTools method on this tab (Profiler.start, Network.enable, …). */
  send<T = Json>(method: string, params: Json = {}): Promise<T> {
    return this.cdp.send<T>(method, params, this.sessionId);
  }

  /** Navigates and waits for the load event (redirects are followed). */
  async goto(url: string, timeoutMs = 15_000): Promise<void> {
    const loaded = this.cdp.once('Page.loadEventFired', this.sessionId, timeoutMs);
    const r = await this.send<{ errorText?: string }>('Page.navigate', { url });
    if (r.errorText) {
      loaded.catch(() => undefined);
      throw new Error(`chromium: cannot load ${url}: ${r.errorText}`);
    }
    await loaded;
  }

  /** Evaluates `expression` in the page (awaiting a promise) and returns its JSON value. */
  async evaluate<T>(expression: string): Promise<T> {
    const r = await this.send<{
      result: { value?: T };
      exceptionDetails?: { text: string; exception?: { description?: string } };
    }>('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true });
    if (r.exceptionDetails)
      throw new Error(
        `in the page: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`,
      );
    return r.result.value as T;
  }

  /** Polls `expression` in the page until it is truthy; returns that value. */
  async waitFor<T>(what: string, expression: string, timeoutMs = 10_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    while (Date.now() < deadline) {
      last = await this.evaluate<T>(expression);
      if (last) return last as T;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(
      `timed out after ${timeoutMs} ms waiting for ${what} (last: ${JSON.stringify(last)})`,
    );
  }

  /** Writes a PNG of the viewport to `file` (its directory is created). */
  async screenshot(file: string): Promise<void> {
    const r = await this.send<{ data: string }>('Page.captureScreenshot', { format: 'png' });
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, Buffer.from(r.data, 'base64'));
  }
}

export class Browser {
  constructor(
    private readonly cdp: Cdp,
    private readonly child: ChildProcess,
    private readonly cluster: ProcessOwner,
    private readonly profile: string,
  ) {}

  get pid(): number {
    return this.child.pid!;
  }

  async newPage(viewport = { width: 1280, height: 720 }): Promise<Page> {
    const { targetId } = await this.cdp.send<{ targetId: string }>('Target.createTarget', {
      url: 'about:blank',
    });
    const { sessionId } = await this.cdp.send<{ sessionId: string }>('Target.attachToTarget', {
      targetId,
      flatten: true,
    });
    await this.cdp.send('Page.enable', {}, sessionId);
    await this.cdp.send('Runtime.enable', {}, sessionId);
    await this.cdp.send(
      'Emulation.setDeviceMetricsOverride',
      { ...viewport, deviceScaleFactor: 1, mobile: false },
      sessionId,
    );
    return new Page(this.cdp, sessionId);
  }

  /** Asks chromium to quit, then stops its PID, untracks it and removes its profile. */
  async close(): Promise<void> {
    await Promise.race([
      this.cdp.send('Browser.close').catch(() => undefined),
      new Promise((r) => setTimeout(r, 3000)),
    ]);
    await stopPid(this.pid, 3000);
    this.cluster.untrack(this.pid);
    // Its helper processes may still be writing the profile for a moment after the browser is
    // gone; teardown removes the whole run dir (and any process using it) in any case.
    try {
      rmSync(this.profile, { recursive: true, force: true, maxRetries: 20, retryDelay: 100 });
    } catch (err) {
      process.stderr.write(`chromium: profile ${this.profile} not removed: ${String(err)}\n`);
    }
  }
}

/** Starts headless chromium with a fresh profile inside the owner's (a cluster's) run dir. */
export async function startChromium(cluster: ProcessOwner): Promise<Browser> {
  const base = join(cluster.dir, 'chromium');
  mkdirSync(base, { recursive: true });
  const profile = mkdtempSync(join(base, 'profile-'));
  const log = openSync(join(base, 'chromium.log'), 'a');
  const child = spawn(CHROMIUM, [...FLAGS, `--user-data-dir=${profile}`, 'about:blank'], {
    stdio: ['ignore', log, log, 'pipe', 'pipe'],
  });
  closeSync(log);
  if (child.pid === undefined) throw new Error(`cannot start ${CHROMIUM}`);
  cluster.track(child.pid, 'chromium (headless)');
  const cdp = new Cdp(child.stdio[3] as Writable, child.stdio[4] as Readable);
  const browser = new Browser(cdp, child, cluster, profile);
  try {
    await Promise.race([
      cdp.send('Browser.getVersion'),
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error(`${CHROMIUM} did not answer within 15 s`)), 15_000),
      ),
    ]);
  } catch (err) {
    await browser.close();
    throw err;
  }
  return browser;
}
