// The live tail page under load: an aggregator in this process, headless chromium on its page,
// and a Forward-protocol sender storing lines at a fixed rate (six containers on three hosts).
// In the page it measures how late lines appear (now − the line's time, sampled every 100 ms),
// the longest gap between animation frames and the main-thread time in long tasks, and the
// number of lines kept. The reference is the same page in the same run with no lines arriving.
//
//   node dist/bench/logs-web.js [lines/s ...]      (default 1000 5000; 10 s each)
import { connect } from 'node:net';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { startAggregator } from '../agents/logs/aggregator/server.js';
import { EventTime, encodeForward, type Entry } from '../agents/logs/forward/codec.js';
import { startChromium, type Page } from '../test/harness/index.js';
import { onProcessExit } from '../test/harness/state.js';
import { stopPid } from '../test/harness/proc.js';

const rates = process.argv.slice(2).map(Number);
if (rates.length === 0) rates.push(1000, 5000);
const SECONDS = 10;

const dir = mkdtempSync(join(tmpdir(), 'flotilla-bench-web-'));
const pids = new Set<number>();
onProcessExit(() => {
  for (const p of pids) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

const agg = await startAggregator({
  listen: { host: '127.0.0.1', port: 0 },
  http: { host: '127.0.0.1', port: 0 },
  dataDir: join(dir, 'data'),
  fsync: 'never',
  hostname: 'bench',
  log: pino({ level: 'warn' }),
});
const browser = await startChromium({
  dir,
  track: (pid) => pids.add(pid),
  untrack: (pid) => pids.delete(pid),
});

/** CPU time (ms) used so far by chromium and all its descendants, from /proc. */
function chromiumCpuMs(): number {
  const parent = new Map<number, number>();
  const cpu = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parent.set(Number(name), Number(f[1]));
      cpu.set(Number(name), Number(f[11]) + Number(f[12]));
    } catch {
      /* gone */
    }
  }
  let ticks = 0;
  for (const [pid, t] of cpu) {
    for (let p: number | undefined = pid; p && p > 1; p = parent.get(p))
      if (p === browser.pid) {
        ticks += t;
        break;
      }
  }
  return ticks * 10; // USER_HZ = 100
}

const sock = connect(agg.port, '127.0.0.1');
await new Promise<void>((r) => sock.once('connect', () => r()));

/** Sends `rate` lines/s for `seconds`, in 10 ms ticks. */
async function feed(service: string, rate: number, seconds: number): Promise<number> {
  let sent = 0;
  const t0 = Date.now();
  const end = t0 + seconds * 1000;
  while (Date.now() < end) {
    const due = Math.floor(((Date.now() - t0) / 1000) * rate);
    const entries: Entry[] = [];
    for (; sent < due; sent++) {
      const c = sent % 6;
      entries.push({
        time: EventTime.fromMillis(Date.now()),
        record: {
          service,
          host: `h${(c % 3) + 1}`,
          container_name: `${service}-${c + 1}`,
          container_id: `${c}`.repeat(64),
          stream: 'stdout',
          log: `10.5.${c}.${sent % 250} "GET /api/items/${sent} HTTP/1.1" 200 ${sent % 9000} ${'x'.repeat(40)}`,
        },
      });
    }
    if (entries.length) sock.write(encodeForward(service, entries));
    await new Promise((r) => setTimeout(r, 10));
  }
  return sent;
}

const PROBE = `(() => {
  const log = document.getElementById('log');
  const s = { lags: [], maxFrameGap: 0, longTaskMs: 0, maxRows: 0 };
  new PerformanceObserver((l) => { for (const e of l.getEntries()) s.longTaskMs += e.duration; })
    .observe({ type: 'longtask' });
  let last = performance.now();
  const frame = (t) => { s.maxFrameGap = Math.max(s.maxFrameGap, t - last); last = t; if (!s.stop) requestAnimationFrame(frame); };
  requestAnimationFrame(frame);
  const sample = setInterval(() => {
    const r = log.lastElementChild;
    if (r && r.dataset.ts) s.lags.push(Date.now() - Number(r.dataset.ts));
    s.maxRows = Math.max(s.maxRows, log.childElementCount);
  }, 100);
  window.probe = () => { s.stop = true; clearInterval(sample); return s; };
  return 1;
})()`;

interface Probe {
  lags: number[];
  maxFrameGap: number;
  longTaskMs: number;
  maxRows: number;
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : NaN;
};

async function run(page: Page, service: string, rate: number): Promise<string> {
  await page.goto(
    `http://127.0.0.1:${agg.httpPort}/?service=${service}${process.env['WEB_QS'] ?? ''}`,
  );
  await page.waitFor(
    'the stream',
    `document.getElementById('status').textContent.startsWith('live')`,
  );
  await page.evaluate(PROBE);
  const profile = process.env['WEB_PROFILE'] === '1' && rate > 0;
  if (profile) {
    await page.send('Profiler.enable');
    await page.send('Profiler.start');
  }
  const cpu0 = chromiumCpuMs();
  const t0 = Date.now();
  const sent = rate > 0 ? await feed(service, rate, SECONDS) : 0;
  if (rate === 0) await new Promise((r) => setTimeout(r, SECONDS * 1000));
  await new Promise((r) => setTimeout(r, 500));
  const cpuShare = (chromiumCpuMs() - cpu0) / (Date.now() - t0);
  const p = await page.evaluate<Probe>('window.probe()');
  if (profile) {
    const { profile: prof } = await page.send<{
      profile: {
        nodes: {
          id: number;
          hitCount?: number;
          callFrame: { functionName: string; url: string; lineNumber: number };
        }[];
      };
    }>('Profiler.stop');
    const self = new Map<string, number>();
    for (const n of prof.nodes) {
      const k = `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.split('/').pop()}:${n.callFrame.lineNumber}`;
      self.set(k, (self.get(k) ?? 0) + (n.hitCount ?? 0));
    }
    const total = [...self.values()].reduce((a, b) => a + b, 0);
    for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 12))
      process.stdout.write(`  ${((100 * v) / total).toFixed(1)}%  ${k}\n`);
  }
  const steady = p.lags.length > 10 ? p.lags.slice(10) : p.lags; // after the first second
  const lag =
    rate > 0
      ? `lag p50 ${pct(steady, 50)} ms, p99 ${pct(steady, 99)} ms (${p.lags.length} samples)`
      : 'lag n/a (no lines)';
  return (
    `${String(rate).padStart(5)} lines/s: ${sent} sent; chromium CPU ${(cpuShare * 100).toFixed(0)}% of a core; ${lag}; longest frame gap ` +
    `${p.maxFrameGap.toFixed(0)} ms; long tasks ${p.longTaskMs.toFixed(0)} ms in ${SECONDS} s; ` +
    `at most ${p.maxRows} lines in the page`
  );
}

try {
  const page = await browser.newPage();
  process.stdout.write(
    `chromium headless, ${SECONDS} s per rate, at most 5000 lines kept; load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')} on ${availableParallelism()} cores\n`,
  );
  process.stdout.write(`reference ${await run(page, 'idle', 0)}\n`);
  for (const rate of rates)
    process.stdout.write(`          ${await run(page, `r${rate}`, rate)}\n`);
} finally {
  sock.destroy();
  await browser.close();
  for (const p of pids) await stopPid(p, 2000);
  await agg.stop();
}
