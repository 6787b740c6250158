/**
 * The issue's forward-input restart scenario, measured for a bare receiver and for logsd in the
 * same run (`npm run bench -- logs-restart`, or `node dist/bench/logs-restart.js [N] [ROUNDS]`):
 * a container prints N short lines (`seq 1 N | sed 's/^/x line /'`, 8-13 bytes) through Docker's
 * fluentd driver (request-ack, cache off) and exits at once; 1 s after the first line arrives
 * the receiver is killed -9, and it is started again 2 s later. Printed: the distinct lines that
 * arrived (the rest dockerd dropped when its 10 s post-exit window closed).
 *
 * - bare: a receiver that only decodes, writes each line to a file with write(2) (so a kill -9
 *   keeps what it acked) and acks;
 * - logsd: `logsd agent` (forward input, its default transport) → aggregator; counted there.
 * FLOTILLA_BENCH_LOGS_IO=node|native picks logsd's --forward-io (default: its own default).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startCluster, type StartedProcess } from '../test/harness/index.js';
import { dropInLogOptions } from '../scripts/local-cluster.js';
import {
  BARE_RECEIVER,
  distinctLines as distinct,
  restartScenario,
} from '../test/integration/forward-restart.js';

const MAIN = fileURLToPath(new URL('../agents/logs/main.js', import.meta.url));
const N = Number(process.argv[2] ?? 100_000);
const ROUNDS = Number(process.argv[3] ?? 1);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const cluster = await startCluster({
  name: 'bench-lrst',
  hosts: 1,
  docker: () => dropInLogOptions(),
});
try {
  const h = cluster.hosts[0]!;
  const agg = h.spawn(
    [
      'node',
      MAIN,
      'aggregator',
      '--listen=127.0.0.1:24240',
      '--http=0.0.0.0:24241',
      `--data-dir=${h.dir}/data`,
      '--log-level=warn',
    ],
    { logName: 'agg' },
  );
  await sleep(1500);
  const io = process.env.FLOTILLA_BENCH_LOGS_IO;
  const base = `http://${h.ip}:24241`;
  /** Records stored (cheap, while it runs); `distinct` at the end. */
  const storedCount = async (svc: string) => {
    try {
      const body = (await (await fetch(`${base}/v1/services`)).json()) as {
        services: { service: string; count: number }[];
      };
      return body.services.find((x) => x.service === svc)?.count ?? 0;
    } catch {
      return 0;
    }
  };
  const storedDistinct = async (svc: string) => {
    const text = await (await fetch(`${base}/v1/logs?service=${svc}`)).text();
    const logs = text
      .split('\n')
      .filter(Boolean)
      .map((l) => (JSON.parse(l) as { log: string }).log);
    return { distinct: distinct(logs.join('\n'), svc), total: logs.length };
  };
  /** Starts a receiver, and returns kill -9 / restart callbacks for the scenario. */
  const receiver = (start: () => StartedProcess) => {
    let p = start();
    return {
      kill: () => h.kill(p, 0),
      restart: () => {
        p = start();
      },
      stop: () => h.kill(p, 2000),
    };
  };
  const agentArgs = [
    'node',
    MAIN,
    'agent',
    '--listen=127.0.0.1:24224',
    // Metadata (the service label) from config.v2.json, as on a cluster host.
    `--containers-dir=${h.dir}/docker/data/containers`,
    '--aggregator=127.0.0.1:24240',
    `--buffer-dir=${h.dir}/buf`,
    '--docker-host=',
    '--http=127.0.0.1:24230',
    '--log-level=warn',
    ...(io ? [`--forward-io=${io}`] : []),
  ];
  for (let round = 1; round <= ROUNDS; round++) {
    const bareFile = `${h.dir}/bare-${round}.log`;
    const b = receiver(() =>
      h.spawn(['node', '--input-type=module', '-e', BARE_RECEIVER, bareFile, '24225'], {
        logName: 'bare',
      }),
    );
    await sleep(1000);
    const bare = await restartScenario(h, {
      tag: `bare${round}`,
      port: 24225,
      n: N,
      ...b,
      count: async () => {
        try {
          return distinct(readFileSync(bareFile, 'utf8'), `bare${round}`);
        } catch {
          return 0;
        }
      },
    });
    await b.stop();
    const a = receiver(() => h.spawn(agentArgs, { logName: 'agent' }));
    await sleep(1500);
    const agent = await restartScenario(h, {
      tag: `lsd${round}`,
      port: 24224,
      n: N,
      ...a,
      count: () => storedCount(`lsd${round}`),
    });
    await a.stop();
    const final = await storedDistinct(`lsd${round}`);
    console.log(
      `forward input, ${N} short lines, exit at once, receiver killed -9 1 s in and restarted 2 s later (round ${round}): bare receiver ${bare} of ${N}, logsd agent${io ? ` (--forward-io ${io})` : ''} ${final.distinct} of ${N} (${final.total - final.distinct} stored twice; ${agent} records)`,
    );
  }
  await h.kill(agg, 2000);
} finally {
  await cluster.stop();
}
