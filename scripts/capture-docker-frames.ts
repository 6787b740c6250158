/**
 * Captures the forward-protocol bytes a real dockerd's fluentd log driver sends, with the log
 * options of units/docker.service.d/50-flotilla.conf, into agents/logs/forward/testdata/ (the
 * codec tests read them). Needs root (one harness host with dockerd); run it again after a
 * Docker upgrade:  node dist/scripts/capture-docker-frames.js
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startCluster, waitFor } from '../test/harness/index.js';
import { dropInLogOptions } from './local-cluster.js';

const OUT = fileURLToPath(new URL('../../agents/logs/forward/testdata/', import.meta.url));
const CODEC = fileURLToPath(new URL('../agents/logs/forward/codec.js', import.meta.url));

// Inside the host's namespace: a forward receiver on the address the drop-in names, acking
// every chunk (fluentd-request-ack=true) and appending the raw bytes to a file.
const listener = (file: string) => `
const { createServer } = require('node:net');
const { appendFileSync } = require('node:fs');
import(${JSON.stringify(CODEC)}).then(({ ForwardDecoder, encodeAck }) => {
  createServer((s) => {
    const d = new ForwardDecoder();
    s.on('data', (c) => {
      appendFileSync(${JSON.stringify(file)}, c);
      for (const f of d.push(c)) if (f.kind === 'events' && f.option.chunk) s.write(encodeAck(f.option.chunk));
    });
  }).listen(24224, '127.0.0.1', () => console.log('listening'));
});`;

const cluster = await startCluster({ name: 'capture', hosts: 1, docker: () => dropInLogOptions() });
try {
  const h = cluster.hosts[0]!;
  const file = join(h.dir, 'frames.bin');
  const l = h.spawn([process.execPath, '-e', listener(file)], { logName: 'listener' });
  await waitFor('listener', () => readFileSync(l.logFile, 'utf8').includes('listening'), 10_000);
  const r = await h.run(['sh', '-c', 'echo hello stdout; echo hello stderr >&2'], {
    name: 'capture-web',
    labels: { service: 'web' },
  });
  if (r.code !== 0) throw new Error(`container exited ${r.code}: ${r.stderr}`);
  await waitFor('two frames', () => readFileSync(file).length > 200, 10_000);
  const bytes = readFileSync(file);
  const version = execFileSync('dockerd', ['--version'], { encoding: 'utf8' }).trim();
  writeFileSync(join(OUT, 'docker-fluentd-message.bin'), bytes);
  writeFileSync(
    join(OUT, 'docker-fluentd-message.json'),
    JSON.stringify(
      {
        capturedWith: version,
        container: { name: '/capture-web', id: r.id, labels: { service: 'web' } },
        command: "sh -c 'echo hello stdout; echo hello stderr >&2'",
        logOpts: dropInLogOptions().logOpts,
        bytes: bytes.length,
      },
      null,
      2,
    ) + '\n',
  );
  process.stdout.write(`captured ${bytes.length} bytes from ${version}\n`);
} finally {
  await cluster.stop();
}
