// The log pipeline on real dockerds whose default log driver is fluentd, pointed at each host's
// `logsd agent`; one `logsd aggregator` on host 1; `logs` read back inside host 1.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { startCluster, type Cluster, type Host, type StartedProcess } from '../harness/index.js';
import { dropInLogOptions } from '../../scripts/local-cluster.js';
import type { LogLine } from '../../agents/logs/aggregator/query.js';

const MAIN = fileURLToPath(new URL('../../agents/logs/main.js', import.meta.url));
const CLI = fileURLToPath(new URL('../../agents/logs/cli-main.js', import.meta.url));

let cluster: Cluster;
let h1: Host;
let h2: Host;
let aggregator: StartedProcess;
const agents = new Map<Host, StartedProcess>();

const aggregatorCmd = (h: Host) => [
  'node',
  MAIN,
  'aggregator',
  '--listen=0.0.0.0:24240',
  '--http=0.0.0.0:24241',
  `--data-dir=${h.dir}/logs-data`,
];

function startAgent(h: Host): StartedProcess {
  const p = h.spawn(
    [
      'node',
      MAIN,
      'agent',
      '--listen=127.0.0.1:24224',
      `--aggregator=${h1.ip}:24240`,
      `--buffer-dir=${h.dir}/logs-buffer`,
      `--hostname=${h.name}`,
      `--docker-host=unix://${h.dockerSocket}`,
      '--http=127.0.0.1:24230',
    ],
    { logName: 'logsd-agent' },
  );
  agents.set(h, p);
  return p;
}

async function waitListening(h: Host, port: number): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const r = await h.exec(['sh', '-c', `ss -ltn | grep -q ':${port} '`]);
    if (r.code === 0) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${h.name}: nothing listening on ${port}`);
}

async function query(qs: string): Promise<LogLine[]> {
  const res = await fetch(`http://${h1.ip}:24241/v1/logs?${qs}`);
  assert.equal(res.status, 200);
  return (await res.text())
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as LogLine);
}

async function count(service: string): Promise<number> {
  try {
    const res = await fetch(`http://${h1.ip}:24241/v1/services`);
    const body = (await res.json()) as { services: { service: string; count: number }[] };
    return body.services.find((s) => s.service === service)?.count ?? 0;
  } catch {
    return -1; // aggregator down
  }
}

async function waitCount(service: string, n: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if ((await count(service)) >= n) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  for (const h of [h1, h2])
    for (const f of ['logsd-agent.log', 'logsd-aggregator.log', 'docker/dockerd.log']) {
      const r = await h.exec([
        'sh',
        '-c',
        `grep -v 'already closed' ${h.dir}/${f} 2>/dev/null | grep -v grpc | tail -n 25`,
      ]);
      process.stderr.write(`--- ${h.name} ${f}\n${r.stdout}`);
    }
  throw new Error(`${service}: ${await count(service)} of ${n} records stored after ${ms} ms`);
}

before(async () => {
  cluster = await startCluster({
    name: 'logs',
    hosts: 2,
    docker: () => dropInLogOptions(),
  });
  [h1, h2] = cluster.hosts as [Host, Host];
  aggregator = h1.spawn(aggregatorCmd(h1), { logName: 'logsd-aggregator' });
  await waitListening(h1, 24240);
  await waitListening(h1, 24241);
  for (const h of [h1, h2]) startAgent(h);
  for (const h of [h1, h2]) await waitListening(h, 24224);
});

after(async () => {
  await cluster?.stop();
});

test(
  'nginx on two hosts: `logs tail --service nginx` shows every line, in order, attributed; -f within 1 s',
  { timeout: 120_000 },
  async () => {
    const script = 'for i in $(seq 1 300); do echo "$(hostname) line $i"; done';
    const [r1, r2] = await Promise.all(
      [h1, h2].map((h, i) =>
        h.run(['sh', '-c', script], { name: `nginx-${i + 1}`, labels: { service: 'nginx' } }),
      ),
    );
    assert.equal(r1!.code, 0);
    assert.equal(r2!.code, 0);
    await waitCount('nginx', 600, 30_000);
    const out = await h1.exec(['node', CLI, 'tail', '--service', 'nginx', '-n', '0', '--json']);
    assert.equal(out.code, 0, out.stderr);
    const lines = out.stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as LogLine);
    assert.equal(lines.length, 600);
    for (const [i, h] of [h1, h2].entries()) {
      const mine = lines.filter((l) => l.container === `nginx-${i + 1}`);
      assert.ok(
        mine.every((l) => l.host === h.name && l.service === 'nginx' && l.stream === 'stdout'),
      );
      assert.deepEqual(
        mine.map((l) => l.log.replace(/^\S+ /, '')),
        Array.from({ length: 300 }, (_, k) => `line ${k + 1}`),
      );
    }
    const human = await h1.exec([
      'node',
      CLI,
      'tail',
      '--service',
      'nginx',
      '-n',
      '2',
      '--host',
      h2.name,
    ]);
    assert.match(
      human.stdout,
      new RegExp(
        `^nginx-2@${h2.name} \\| \\S+ line 299\\nnginx-2@${h2.name} \\| \\S+ line 300\\n$`,
      ),
    );

    // -f: a line printed now shows up within a second of its Docker timestamp.
    const follow = h1.spawn(
      ['node', CLI, 'tail', '--service', 'nginx', '-f', '-n', '1', '--json'],
      {
        pipe: true,
        logName: 'logs-tail-f',
      },
    );
    try {
      let text = '';
      const seen = new Promise<{ line: LogLine; at: number }>((resolve) => {
        follow.child.stdout!.on('data', (d: Buffer) => {
          text += d.toString();
          for (const l of text.split('\n')) {
            if (l.includes('fresh line'))
              resolve({ line: JSON.parse(l) as LogLine, at: Date.now() });
          }
        });
      });
      await new Promise((r) => setTimeout(r, 500));
      await h2.run(['sh', '-c', 'echo fresh line'], { labels: { service: 'nginx' } });
      const { line, at } = await seen;
      assert.equal(line.host, h2.name);
      assert.ok(
        at - line.ts < 1000,
        `tail -f showed the line ${at - line.ts} ms after it was logged`,
      );
    } finally {
      await h1.kill(follow, 1000);
    }
  },
);

test(
  '100,000 lines from one container, with the agent killed and restarted and the aggregator killed -9 for 10 s: all arrive once, in order',
  { timeout: 240_000 },
  async () => {
    const N = 100_000;
    // ~100-byte lines: 10 MB, so dockerd's 1 MB in-memory pipe cannot swallow the whole output
    // and let the container exit long before the driver has delivered it (dockerd drops what is
    // undelivered 10 s after exit).
    const pad = 'x'.repeat(90);
    // The container stays up after printing: dockerd cuts a logger off 10 s after its container
    // exits and drops what is undelivered (a dockerd limit, not ours; see docs/logs.md).
    const script = `awk 'BEGIN { for (i = 1; i <= ${N}; i++) printf "%d ${pad}\\n", i }'; exec sleep 600`;
    const { id: counterId } = await h2.run(['sh', '-c', script], {
      name: 'counter',
      labels: { service: 'counter' },
      detach: true,
    });
    const sent = async () => Math.max(0, await count('counter'));
    await waitCount('counter', N * 0.25, 60_000);
    // Agent killed -9 mid-stream, restarted: the driver resends what was not acked.
    const agent = agents.get(h2)!;
    process.kill(agent.pid, 'SIGKILL');
    await h2.kill(agent, 0);
    await new Promise((r) => setTimeout(r, 500));
    startAgent(h2);
    await waitCount('counter', N * 0.5, 60_000);
    // Aggregator killed -9 for 10 s: the agent buffers and resends.
    process.kill(aggregator.pid, 'SIGKILL');
    await h1.kill(aggregator, 0);
    await new Promise((r) => setTimeout(r, 10_000));
    aggregator = h1.spawn(aggregatorCmd(h1), { logName: 'logsd-aggregator' });
    try {
      await waitCount('counter', N, 120_000);
    } catch (err) {
      const nums = new Set(
        (await query('service=counter')).map((l) => Number(l.log.split(' ')[0])),
      );
      const missing = [];
      for (let i = 1; i <= N && missing.length < 20; i++) if (!nums.has(i)) missing.push(i);
      throw new Error(`${String(err)}; first missing lines: ${missing.join(', ')}`);
    } finally {
      await h2.docker.getContainer(counterId).remove({ force: true });
    }
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(await sent(), N, 'no duplicates stored');
    const lines = await query('service=counter');
    const nums = lines.map((l) => Number(l.log.split(' ')[0]));
    const missing = [];
    for (let i = 1, j = 0; i <= N; i++) {
      if (nums[j] === i) j++;
      else missing.push(i);
    }
    assert.deepEqual(missing.slice(0, 10), [], `${missing.length} lines missing or out of order`);
    assert.equal(nums.length, N);
  },
);

test(
  'a 40 KiB line comes back whole; garbage bytes on the agent port do not disturb a concurrent stream',
  { timeout: 120_000 },
  async () => {
    const big = h1.run(['sh', '-c', "head -c 40960 /dev/zero | tr '\\0' x; echo; seq 1 20000"], {
      name: 'big',
      labels: { service: 'big' },
    });
    const garbage = await h1.exec([
      'node',
      '-e',
      `const s=require('net').connect(24224,'127.0.0.1',()=>{s.write(Buffer.from([0x93,0xc1,0xff,0x00,1,2,3]));setTimeout(()=>s.destroy(),300)});s.on('error',()=>{})`,
    ]);
    assert.equal(garbage.code, 0, garbage.stderr);
    assert.equal((await big).code, 0);
    await waitCount('big', 20_001, 60_000);
    const lines = await query('service=big');
    assert.equal(lines.length, 20_001);
    assert.equal(lines[0]!.log, 'x'.repeat(40960));
    assert.deepEqual(
      lines.slice(1).map((l) => l.log),
      Array.from({ length: 20000 }, (_, i) => String(i + 1)),
    );
    const metrics = await h1.exec([
      'node',
      '-e',
      `fetch('http://127.0.0.1:24230/metrics').then(r=>r.text()).then(t=>process.stdout.write(t))`,
    ]);
    assert.match(metrics.stdout, /flotilla_logs_agent_malformed_total [1-9]/);
  },
);
