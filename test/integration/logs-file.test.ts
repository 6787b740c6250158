// The file input (the default) on real dockerds with the shipped drop-in's json-file options:
// `logsd agent` reads <data-root>/containers/*/*-json.log on each host; one aggregator on host 1.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, withDeadline, type Cluster, type Host } from '../harness/index.js';
import { dropInLogOptions } from '../../scripts/local-cluster.js';
import type { LogLine } from '../../agents/logs/aggregator/query.js';
import { CLI, LogsRig, numbered, runKept, sleep } from './logs-helpers.js';

let cluster: Cluster;
let h1: Host;
let h2: Host;
let rig: LogsRig;

before(async () => {
  cluster = await startCluster({ name: 'logsf', hosts: 2, docker: () => dropInLogOptions() });
  [h1, h2] = cluster.hosts as [Host, Host];
  rig = new LogsRig(h1, [h1, h2], (h) => [
    '--listen=',
    `--containers-dir=${h.dir}/docker/data/containers`,
  ]);
  rig.startAggregator();
  await rig.waitListening(h1, 24240);
  for (const h of [h1, h2]) rig.startAgent(h);
  for (const h of [h1, h2]) await rig.waitHttp(h, 'http://127.0.0.1:24230/healthz');
});

after(async () => {
  await cluster?.stop();
});

test(
  'one service on two hosts: every line arrives, in order, attributed; -f within 1 s; docker logs shows them too',
  // Above assertExactlyOnce's own 120 s, so a failure names the missing lines, not a timeout.
  { timeout: 180_000 },
  async () => {
    await Promise.all(
      [h1, h2].map((h, i) =>
        runKept(h, ['sh', '-c', numbered(`web-${i + 1}`, 300, 10)], {
          name: `web-${i + 1}`,
          labels: { service: 'web' },
        }),
      ),
    );
    await rig.assertExactlyOnce('web', { 'web-1': 300, 'web-2': 300 });
    const lines = await rig.query('service=web');
    for (const [i, h] of [h1, h2].entries()) {
      const mine = lines.filter((l) => l.container === `web-${i + 1}`);
      assert.equal(mine.length, 300);
      assert.ok(mine.every((l) => l.host === h.name && l.stream === 'stdout'));
    }
    // docker logs reads the same json-file (the API `docker logs` uses; frames of 8-byte
    // headers, as the container has no TTY).
    const raw = (await h2.docker
      .getContainer('web-2')
      .logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer;
    let text = '';
    for (let o = 0; o + 8 <= raw.length; o += 8 + raw.readUInt32BE(o + 4))
      text += raw.subarray(o + 8, o + 8 + raw.readUInt32BE(o + 4)).toString();
    const dl = text.trimEnd().split('\n');
    assert.equal(dl.length, 300);
    assert.match(dl[299]!, /^web-2 300 /);

    const follow = h1.spawn(
      [
        'node',
        CLI,
        'tail',
        '--service',
        'web',
        '-f',
        '-n',
        '1',
        '--json',
        '--server',
        'http://127.0.0.1:24241',
      ],
      {
        pipe: true,
        logName: 'logs-tail-f',
      },
    );
    try {
      let text = '';
      let subscribed!: () => void;
      const backlog = new Promise<void>((r) => (subscribed = r));
      const seen = new Promise<{ line: LogLine; at: number }>((resolve) => {
        follow.child.stdout!.on('data', (d: Buffer) => {
          text += d.toString();
          for (const l of text.split('\n')) {
            if (/web-[12] 300 /.test(l)) subscribed(); // the -n 1 backlog: whichever is last
            if (l.includes('fresh line'))
              resolve({ line: JSON.parse(l) as LogLine, at: Date.now() });
          }
        });
      });
      // the -n 1 backlog printed: the follower is subscribed
      await withDeadline(backlog, 20_000, `logs tail -f's -n 1 backlog (got: ${text})`);
      await h2.run(['sh', '-c', 'echo fresh line'], { labels: { service: 'web' } });
      const { line, at } = await withDeadline(seen, 20_000, 'the fresh line in logs tail -f');
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
  'containers that print one line, exit and are removed at once: every line arrives',
  { timeout: 180_000 },
  async () => {
    // h.run removes the container as soon as it has exited: its directory and json-file go with
    // it, so the agent must have opened the file by then (the removed file stays readable).
    const N = 8;
    for (let i = 1; i <= N; i++)
      await h1.run(['sh', '-c', `echo "gone-${i} 1 once"`], { labels: { service: 'gone' } });
    const each = Object.fromEntries(Array.from({ length: N }, (_, i) => [`gone-${i + 1}`, 1]));
    await rig.assertExactlyOnce('gone', each);
  },
);

test(
  '100,000 lines from a container that exits at once, rotating at max-size=1m, agent killed -9 mid-stream and restarted: all arrive exactly once',
  { timeout: 180_000 },
  async () => {
    const N = 100_000;
    await runKept(h2, ['sh', '-c', numbered('burst', N, 90)], {
      name: 'burst',
      labels: { service: 'burst' },
      logConfig: { Type: 'json-file', Config: { 'max-size': '1m', 'max-file': '40' } },
    });
    // The container is gone already (it printed and exited); the agent is somewhere in its files.
    await rig.waitCount('burst', 5000, 60_000);
    await rig.kill9Agent(h2);
    await sleep(1000);
    rig.startAgent(h2);
    await rig.assertExactlyOnce('burst', { burst: N });
    assert.equal(await rig.metric(h2, 'flotilla_logs_agent_file_skipped_bytes_total'), 0);
  },
);

test(
  'agent down 30 s while three containers log (docker run works meanwhile): every line arrives once after it starts',
  { timeout: 150_000 },
  async () => {
    await rig.kill9Agent(h1);
    const names = ['down-1', 'down-2', 'down-3'];
    // runKept asserts each run succeeds although nothing reads the logs.
    await Promise.all(
      names.map((n) =>
        runKept(h1, ['sh', '-c', `${numbered(n, 20_000, 40)}; sleep 2; echo "${n} 20001 last"`], {
          name: n,
          labels: { service: 'down' },
        }),
      ),
    );
    await sleep(30_000 - 3000);
    assert.equal(await rig.count('down'), 0);
    rig.startAgent(h1);
    await rig.assertExactlyOnce('down', { 'down-1': 20_001, 'down-2': 20_001, 'down-3': 20_001 });
  },
);

test('a 40 KiB line comes back whole, between numbered lines', { timeout: 60_000 }, async () => {
  const r = await h1.run(
    ['sh', '-c', "echo 'big 1'; head -c 40960 /dev/zero | tr '\\0' x; echo; echo 'big 3'"],
    { name: 'big', labels: { service: 'big' } },
  );
  assert.equal(r.code, 0);
  await rig.waitCount('big', 3, 30_000);
  const lines = await rig.query('service=big');
  assert.deepEqual(
    lines.map((l) => l.log),
    ['big 1', 'x'.repeat(40960), 'big 3'],
  );
});

test(
  'four containers started together with --label service=x are all filed under x',
  { timeout: 60_000 },
  async () => {
    const names = ['four-1', 'four-2', 'four-3', 'four-4'];
    await Promise.all(
      names.map((n) =>
        h2.run(['sh', '-c', numbered(n, 50, 5)], { name: n, labels: { service: 'fourx' } }),
      ),
    );
    await rig.assertExactlyOnce('fourx', Object.fromEntries(names.map((n) => [n, 50])));
    const svc = await rig.services();
    for (const n of names) assert.ok(!svc.includes(n), `${n} filed under its own name`);
  },
);

test(
  'rotation that outran a stopped agent: the lost bytes are counted, the rest arrives in order',
  { timeout: 60_000 },
  async () => {
    const { id } = await h2.run(
      [
        'sh',
        '-c',
        `${numbered('outrun', 100, 90)}; sleep 4; ${numbered('outrun', 20_000, 90, 101)}`,
      ],
      {
        name: 'outrun',
        labels: { service: 'outrun' },
        detach: true,
        logConfig: { Type: 'json-file', Config: { 'max-size': '200k', 'max-file': '2' } },
      },
    );
    await rig.waitCount('outrun', 100, 30_000);
    await sleep(500); // the checkpoint is written 200 ms after the ack
    await rig.kill9Agent(h2);
    await h2.docker.getContainer(id).wait();
    rig.startAgent(h2);
    await rig.waitHttp(h2, 'http://127.0.0.1:24230/healthz');
    const deadline = Date.now() + 30_000;
    let nums: number[] = [];
    while (Date.now() < deadline) {
      nums = (await rig.query('service=outrun')).map((l) => Number(l.log.split(' ')[1]));
      if (nums[nums.length - 1] === 20_100) break;
      await sleep(300);
    }
    assert.equal(nums[nums.length - 1], 20_100);
    assert.ok(
      nums.every((x, i) => i === 0 || x > nums[i - 1]!),
      'in order, none twice',
    );
    assert.ok(nums.length < 20_100, 'the two files left hold only the tail');
    const skipped = await rig.metric(h2, 'flotilla_logs_agent_file_skipped_bytes_total');
    assert.ok(skipped > 0, `skipped bytes counted (${skipped})`);
  },
);
