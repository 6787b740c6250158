// Shared by the logs integration files: an aggregator on host 1, a `logsd agent` per host, and
// the checks on what the aggregator stored.
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import type { Host, StartedProcess } from '../harness/index.js';
import type { LogLine } from '../../agents/logs/aggregator/query.js';

export const MAIN = fileURLToPath(new URL('../../agents/logs/main.js', import.meta.url));
export const CLI = fileURLToPath(new URL('../../agents/logs/cli-main.js', import.meta.url));

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class LogsRig {
  aggregator: StartedProcess | undefined;
  readonly agents = new Map<Host, StartedProcess>();

  constructor(
    readonly h1: Host,
    readonly hosts: Host[],
    /** Extra agent flags (the input under test). */
    readonly agentFlags: (h: Host) => string[],
  ) {}

  get base(): string {
    return `http://${this.h1.ip}:24241`;
  }

  startAggregator(): void {
    this.aggregator = this.h1.spawn(
      [
        'node',
        MAIN,
        'aggregator',
        '--listen=0.0.0.0:24240',
        '--http=0.0.0.0:24241',
        `--data-dir=${this.h1.dir}/logs-data`,
      ],
      { logName: 'logsd-aggregator' },
    );
  }

  startAgent(h: Host): StartedProcess {
    const p = h.spawn(
      [
        'node',
        MAIN,
        'agent',
        `--aggregator=${this.h1.ip}:24240`,
        `--buffer-dir=${h.dir}/logs-buffer`,
        `--hostname=${h.name}`,
        `--docker-host=unix://${h.dockerSocket}`,
        '--http=127.0.0.1:24230',
        ...this.agentFlags(h),
      ],
      { logName: 'logsd-agent' },
    );
    this.agents.set(h, p);
    return p;
  }

  async kill9Agent(h: Host): Promise<void> {
    const a = this.agents.get(h)!;
    process.kill(a.pid, 'SIGKILL');
    await h.kill(a, 0);
  }

  async kill9Aggregator(): Promise<void> {
    process.kill(this.aggregator!.pid, 'SIGKILL');
    await this.h1.kill(this.aggregator!, 0);
  }

  async waitHttp(h: Host, url: string): Promise<void> {
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      const r = await h.exec([
        'node',
        '-e',
        `fetch(${JSON.stringify(url)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))`,
      ]);
      if (r.code === 0) return;
      await sleep(200);
    }
    throw new Error(`${h.name}: ${url} not answering`);
  }

  async waitListening(h: Host, port: number): Promise<void> {
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      const r = await h.exec(['sh', '-c', `ss -ltn | grep -q ':${port} '`]);
      if (r.code === 0) return;
      await sleep(100);
    }
    throw new Error(`${h.name}: nothing listening on ${port}`);
  }

  async query(qs: string): Promise<LogLine[]> {
    const res = await fetch(`${this.base}/v1/logs?${qs}`);
    assert.equal(res.status, 200);
    return (await res.text())
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as LogLine);
  }

  async count(service: string): Promise<number> {
    try {
      const res = await fetch(`${this.base}/v1/services`);
      const body = (await res.json()) as { services: { service: string; count: number }[] };
      return body.services.find((s) => s.service === service)?.count ?? 0;
    } catch {
      return -1; // aggregator down
    }
  }

  async services(): Promise<string[]> {
    const res = await fetch(`${this.base}/v1/services`);
    const body = (await res.json()) as { services: { service: string }[] };
    return body.services.map((s) => s.service);
  }

  async waitCount(service: string, n: number, ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if ((await this.count(service)) >= n) return;
      await sleep(200);
    }
    for (const h of this.hosts)
      for (const f of ['logsd-agent.log', 'logsd-aggregator.log', 'docker/dockerd.log']) {
        const r = await h.exec(['sh', '-c', `grep -v grpc ${h.dir}/${f} 2>/dev/null | tail -n 15`]);
        process.stderr.write(`--- ${h.name} ${f}\n${r.stdout}`);
      }
    throw new Error(
      `${service}: ${await this.count(service)} of ${n} records stored after ${ms} ms`,
    );
  }

  /**
   * Every numbered line 1..n of `service` stored exactly once and in order per container
   * (lines are "<container> <n> …"). Waits until the count settles, so a late resend is seen.
   */
  async assertExactlyOnce(service: string, perContainer: Record<string, number>): Promise<void> {
    const total = Object.values(perContainer).reduce((a, b) => a + b, 0);
    try {
      await this.waitCount(service, total, 120_000);
    } catch (err) {
      // Name the gaps: which lines of which container never arrived.
      const lines = await this.query(`service=${service}`).catch(() => []);
      const gaps: string[] = [];
      for (const [name, n] of Object.entries(perContainer)) {
        const seen = new Set(
          lines.filter((l) => l.log.startsWith(`${name} `)).map((l) => Number(l.log.split(' ')[1])),
        );
        let start = 0;
        for (let i = 1; i <= n + 1; i++) {
          if (i <= n && !seen.has(i)) start ||= i;
          else if (start) {
            gaps.push(`${name} ${start}..${i - 1}`);
            start = 0;
          }
        }
      }
      throw new Error(`${String(err)}; missing: ${gaps.slice(0, 10).join(', ')}`);
    }
    await sleep(1500);
    const lines = await this.query(`service=${service}`);
    for (const [name, n] of Object.entries(perContainer)) {
      const nums = lines
        .filter((l) => l.log.startsWith(`${name} `))
        .map((l) => Number(l.log.split(' ')[1]));
      const missing: number[] = [];
      const seen = new Set<number>();
      let dups = 0;
      for (const x of nums) {
        if (seen.has(x)) dups++;
        seen.add(x);
      }
      for (let i = 1; i <= n && missing.length < 10; i++) if (!seen.has(i)) missing.push(i);
      assert.deepEqual(missing, [], `${name}: lines missing (first 10)`);
      assert.equal(dups, 0, `${name}: ${dups} lines stored twice`);
      const sorted = nums.every((x, i) => i === 0 || x > nums[i - 1]!);
      assert.ok(sorted, `${name}: lines out of order`);
    }
    assert.equal(await this.count(service), total, 'no extra records stored');
  }

  async metric(h: Host, name: string): Promise<number> {
    const r = await h.exec([
      'node',
      '-e',
      `fetch('http://127.0.0.1:24230/metrics').then(r=>r.text()).then(t=>process.stdout.write(t))`,
    ]);
    const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(r.stdout);
    return m ? Number(m[1]) : NaN;
  }
}

/**
 * Runs a container to its end and keeps it (the harness's `run` removes it, and with it the
 * json-file log a stopped agent would still have to read). Returns its id.
 */
export async function runKept(
  h: Host,
  cmd: string[],
  opts: Parameters<Host['run']>[1] = {},
): Promise<string> {
  const { id } = await h.run(cmd, { ...opts, detach: true });
  const r = (await h.docker.getContainer(id).wait()) as { StatusCode: number };
  assert.equal(r.StatusCode, 0, `${opts.name ?? id}: exit ${r.StatusCode}`);
  return id;
}

/** A container script printing `<name> <i> <pad>` for i = 1..n and exiting at once. */
export const numbered = (name: string, n: number, pad = 60, from = 1) =>
  `awk 'BEGIN { for (i = ${from}; i < ${from + n}; i++) printf "${name} %d ${'x'.repeat(pad)}\\n", i }'`;
