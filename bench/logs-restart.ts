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
import { startCluster, type Host, type StartedProcess } from '../test/harness/index.js';
import { FORWARD_LOG_OPTIONS, dropInLogOptions } from '../scripts/local-cluster.js';

const MAIN = fileURLToPath(new URL('../agents/logs/main.js', import.meta.url));
const CODEC = fileURLToPath(new URL('../agents/logs/forward/codec.js', import.meta.url));
const N = Number(process.argv[2] ?? 100_000);
const ROUNDS = Number(process.argv[3] ?? 1);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const BARE = `
const net = await import('node:net');
const fs = await import('node:fs');
const { ForwardDecoder, encodeAck } = await import(${JSON.stringify(CODEC)});
const fd = fs.openSync(process.argv[1], 'a');
net.createServer((s) => {
  s.setNoDelay(true);
  const d = new ForwardDecoder();
  s.on('data', (c) => {
    for (const f of d.push(c)) {
      if (f.kind !== 'events') continue;
      let out = '';
      for (const e of f.entries ?? []) out += String(e.record.log) + '\\n';
      fs.writeSync(fd, out);
      if (f.option.chunk) s.write(encodeAck(f.option.chunk));
    }
  });
}).listen(24225, '127.0.0.1');
`;

const driver = (port: number) => ({
  Type: 'fluentd',
  Config: { ...FORWARD_LOG_OPTIONS, 'fluentd-address': `127.0.0.1:${port}` },
});

const distinct = (text: string, tag: string) => {
  const seen = new Set<string>();
  for (const l of text.split('\n')) if (l.startsWith(`${tag} line `)) seen.add(l);
  return seen.size;
};

async function scenario(
  h: Host,
  tag: string,
  port: number,
  start: () => StartedProcess,
  count: () => Promise<number>,
): Promise<number> {
  let p = start();
  await sleep(1500);
  const run = h.run(['sh', '-c', `seq 1 ${N} | sed 's/^/${tag} line /'`], {
    labels: { service: tag },
    logConfig: driver(port),
    timeoutMs: 600_000,
  });
  const t0 = Date.now();
  while ((await count()) === 0 && Date.now() - t0 < 60_000) await sleep(20);
  await sleep(1000);
  await h.kill(p, 0);
  await sleep(2000);
  p = start();
  await run;
  // dockerd's 10 s post-exit window, then the last deliveries settle.
  let n = -1;
  for (;;) {
    await sleep(2000);
    const m = await count();
    if (m === n) break;
    n = m;
  }
  await h.kill(p, 2000);
  return n;
}

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
  for (let round = 1; round <= ROUNDS; round++) {
    const bareFile = `${h.dir}/bare-${round}.log`;
    const bare = await scenario(
      h,
      `bare${round}`,
      24225,
      () => h.spawn(['node', '--input-type=module', '-e', BARE, bareFile], { logName: 'bare' }),
      async () => {
        try {
          return distinct(readFileSync(bareFile, 'utf8'), `bare${round}`);
        } catch {
          return 0;
        }
      },
    );
    const agent = await scenario(
      h,
      `lsd${round}`,
      24224,
      () =>
        h.spawn(
          [
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
          ],
          { logName: 'agent' },
        ),
      () => storedCount(`lsd${round}`),
    );
    const final = await storedDistinct(`lsd${round}`);
    console.log(
      `forward input, ${N} short lines, exit at once, receiver killed -9 1 s in and restarted 2 s later (round ${round}): bare receiver ${bare} of ${N}, logsd agent${io ? ` (--forward-io ${io})` : ''} ${final.distinct} of ${N} (${final.total - final.distinct} stored twice; ${agent} records)`,
    );
  }
  await h.kill(agg, 2000);
} finally {
  await cluster.stop();
}
