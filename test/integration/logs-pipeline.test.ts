// The forward input on a real dockerd whose log driver is fluentd (request-ack, cache off, no
// labels= log-opt), pointed at `logsd agent`; the aggregator on the same host.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startCluster, type Cluster, type Host } from '../harness/index.js';
import { FORWARD_LOG_OPTIONS } from '../../scripts/local-cluster.js';
import { LogsRig, numbered, sleep } from './logs-helpers.js';
import { BARE_RECEIVER, distinctLines, restartScenario } from './forward-restart.js';

let cluster: Cluster;
let h1: Host;
let rig: LogsRig;

before(async () => {
  cluster = await startCluster({
    name: 'logsw',
    hosts: 1,
    docker: () => ({ logDriver: 'fluentd', logOpts: FORWARD_LOG_OPTIONS }),
  });
  [h1] = cluster.hosts as [Host];
  // --containers-dir stays on: the forward input reads container metadata from config.v2.json
  // (there are no json-file logs with the fluentd driver, so the file input idles).
  rig = new LogsRig(h1, [h1], (h) => [
    '--listen=127.0.0.1:24224',
    `--containers-dir=${h.dir}/docker/data/containers`,
  ]);
  rig.startAggregator();
  await rig.waitListening(h1, 24240);
  rig.startAgent(h1);
  await rig.waitListening(h1, 24224);
});

after(async () => {
  await cluster?.stop();
});

test(
  'forward input: 50,000 lines from a container that exits at once, agent killed -9 mid-stream and restarted 2 s later: zero lost, zero duplicated',
  // ~100-byte lines: after the container exits, dockerd holds what is left in its pipe (~1 MiB)
  // and gives the driver 10 s to deliver it (then "Logger already closed"). 1 MiB of 100-byte
  // lines is ~10k round trips, which the agent makes in time on a loaded 2-core CI machine;
  // 1 MiB of 13-byte lines (the issue's `seq | sed`) is ~80k, which even a bare receiver does
  // not make there (docs/logs.md: the forward input's limit; bench/logs-restart.ts measures
  // the scenario for a bare receiver and for logsd in the same run).
  { timeout: 240_000 },
  async () => {
    // 50,000 × 100 bytes: 5 MB, so the container is blocked on the driver (mid-stream) when the
    // agent dies, and the suite stays short at the driver's one-line round trip.
    const N = 50_000;
    const done = h1.run(['sh', '-c', numbered('fwd', N, 88)], {
      name: 'fwd',
      labels: { service: 'fwd' },
      timeoutMs: 120_000,
    });
    // Mid-stream: once the first lines are stored (a loaded machine may take over a second to
    // start the container; killed before it starts, the sync driver would refuse the start).
    await rig.waitCount('fwd', 500, 60_000);
    const before = await rig.count('fwd');
    await rig.kill9Agent(h1);
    await sleep(2000);
    rig.startAgent(h1);
    assert.equal((await done).code, 0);
    assert.ok(before < N, `the agent was killed mid-stream (${before} stored by then)`);
    await rig.assertExactlyOnce('fwd', { fwd: N });
    await rig.waitListening(h1, 24224);
  },
);

test(
  "forward input, the issue's scenario: 100,000 `seq | sed` lines (8-13 bytes), exit at once, receiver killed -9 1 s in and restarted 2 s later: logsd stores what a bare receiver gets in the same conditions (at least 60 % of it), none twice",
  // After the container exits dockerd gives the driver 10 s for what is left in its pipe
  // (~1 MiB: ~80k of these lines, one round trip each). Whether dockerd makes that depends on
  // the machine's load, so a bare receiver (decode, write(2), ack) runs the same scenario first
  // as the reference (docs/logs.md; bench/logs-restart.ts measures both).
  { timeout: 300_000 },
  async (t) => {
    const N = 100_000;
    const bareFile = `${h1.dir}/bare-restart.log`;
    const startBare = () =>
      h1.spawn(['node', '--input-type=module', '-e', BARE_RECEIVER, bareFile, '24225'], {
        logName: 'bare-receiver',
      });
    let bareProc = startBare();
    await rig.waitListening(h1, 24225);
    const bare = await restartScenario(h1, {
      tag: 'rbare',
      port: 24225,
      n: N,
      kill: () => h1.kill(bareProc, 0),
      restart: () => {
        bareProc = startBare();
      },
      count: async () => {
        try {
          return distinctLines(readFileSync(bareFile, 'utf8'), 'rbare');
        } catch {
          return 0; // nothing received yet
        }
      },
    });
    await h1.kill(bareProc, 2000);
    const got = await restartScenario(h1, {
      tag: 'rlsd',
      port: 24224,
      n: N,
      kill: () => rig.kill9Agent(h1),
      restart: () => void rig.startAgent(h1),
      count: () => rig.count('rlsd'),
    });
    await rig.waitListening(h1, 24224);
    const lines = await rig.query('service=rlsd');
    const distinct = distinctLines(lines.map((l) => l.log).join('\n'), 'rlsd');
    t.diagnostic(`bare receiver ${bare} of ${N}; logsd ${distinct} of ${N} (${got} records)`);
    assert.equal(lines.length, distinct, 'stored twice');
    // Not "all of them whenever the bare receiver got all": on this 2-core machine logsd (which
    // also ships to the aggregator beside it) has stored 80–100% of what the bare receiver got in
    // the same run (bench/logs-restart.ts); the node transport before it 27–56% of 100,000.
    assert.ok(
      distinct >= bare * 0.6,
      `logsd ${distinct} of ${N}, the bare receiver ${bare} in the same conditions`,
    );
  },
);

test('forward input: a 40 KiB line comes back whole', { timeout: 60_000 }, async () => {
  const r = await h1.run(
    ['sh', '-c', "echo 'big 1'; head -c 40960 /dev/zero | tr '\\0' x; echo; echo 'big 3'"],
    { name: 'big', labels: { service: 'big' } },
  );
  assert.equal(r.code, 0);
  await rig.waitCount('big', 3, 30_000);
  await sleep(300);
  const lines = await rig.query('service=big');
  assert.deepEqual(
    lines.map((l) => l.log),
    ['big 1', 'x'.repeat(40960), 'big 3'],
  );
});

test(
  'forward input: four containers started together with --label service=x (no labels= log-opt) are all filed under x',
  { timeout: 60_000 },
  async () => {
    const names = ['four-1', 'four-2', 'four-3', 'four-4'];
    await Promise.all(
      names.map((n) =>
        h1.run(['sh', '-c', numbered(n, 50, 5)], { name: n, labels: { service: 'fourx' } }),
      ),
    );
    await rig.assertExactlyOnce('fourx', Object.fromEntries(names.map((n) => [n, 50])));
    const svc = await rig.services();
    for (const n of names) assert.ok(!svc.includes(n), `${n} filed under its own name`);
  },
);

test(
  'garbage bytes on the agent port close that connection only; a concurrent stream is whole',
  { timeout: 60_000 },
  async () => {
    const stream = h1.run(['sh', '-c', `sleep 1; ${numbered('calm', 5000, 5)}`], {
      name: 'calm',
      labels: { service: 'calm' },
    });
    const garbage = await h1.exec([
      'node',
      '-e',
      `const s=require('net').connect(24224,'127.0.0.1',()=>{s.write(Buffer.from([0x93,0xc1,0xff,0x00,1,2,3]));setTimeout(()=>s.destroy(),300)});s.on('error',()=>{})`,
    ]);
    assert.equal(garbage.code, 0, garbage.stderr);
    assert.equal((await stream).code, 0);
    await rig.assertExactlyOnce('calm', { calm: 5000 });
    assert.ok((await rig.metric(h1, 'flotilla_logs_agent_malformed_total')) >= 1);
  },
);
