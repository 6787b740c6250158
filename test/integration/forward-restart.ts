// The forward-input restart scenario, shared by the logs-pipeline test and
// bench/logs-restart.ts: a container prints N short lines (`seq 1 N | sed 's/^/<tag> line /'`)
// through Docker's fluentd driver and exits at once; 1 s after its first line arrives the
// receiver is killed -9, and 2 s later it is started again. A bare receiver (decode, write(2) of
// each line to a file, ack) is the reference that shows what dockerd itself delivers.
import { fileURLToPath } from 'node:url';
import type { Host } from '../harness/index.js';
import { FORWARD_LOG_OPTIONS } from '../../scripts/local-cluster.js';

const CODEC = fileURLToPath(new URL('../../agents/logs/forward/codec.js', import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `node --input-type=module -e BARE_RECEIVER <file> <port>`: appends every line it acks. */
export const BARE_RECEIVER = `
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
}).listen(Number(process.argv[2]), '127.0.0.1');
`;

/** Distinct "<tag> line <i>" lines in `text`. */
export function distinctLines(text: string, tag: string): number {
  const seen = new Set<string>();
  for (const l of text.split('\n')) if (l.startsWith(`${tag} line `)) seen.add(l);
  return seen.size;
}

/**
 * Runs the scenario against a receiver on `port` (already listening); returns what `count`
 * says once it has settled after dockerd's 10 s post-exit window.
 */
export async function restartScenario(
  h: Host,
  o: {
    tag: string;
    port: number;
    n: number;
    kill: () => Promise<void>;
    restart: () => void;
    count: () => Promise<number>;
  },
): Promise<number> {
  const run = h.run(['sh', '-c', `seq 1 ${o.n} | sed 's/^/${o.tag} line /'`], {
    labels: { service: o.tag },
    logConfig: {
      Type: 'fluentd',
      Config: { ...FORWARD_LOG_OPTIONS, 'fluentd-address': `127.0.0.1:${o.port}` },
    },
    timeoutMs: 600_000,
  });
  const t0 = Date.now();
  while ((await o.count()) <= 0 && Date.now() - t0 < 60_000) await sleep(20);
  await sleep(1000);
  await o.kill();
  await sleep(2000);
  o.restart();
  await run;
  let n = -1;
  for (;;) {
    await sleep(2000);
    const m = await o.count();
    if (m === n) return n;
    n = m;
  }
}
