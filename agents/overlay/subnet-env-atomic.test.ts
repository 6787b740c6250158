/**
 * subnet.env is replaced atomically: dockerd, dnsd and `source` read it at any moment, so a
 * reader must only ever see one complete version, never an empty or half-written file, and a
 * reader that opened the old file keeps reading the old version whole.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, openSync, readFileSync, readSync, closeSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { parseSubnetEnvSubnet, readPreviousSubnet, writeFileAtomic } from './subnet-env.js';
import { formatCidr } from './ip.js';

const version = (n: number) =>
  `FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.${n % 250}.1/24\n${'#'.repeat(4000)}\nEND ${n}\n`;

test('a concurrent reader only ever sees complete versions', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flt-atomic-'));
  const file = join(dir, 'subnet.env');
  await writeFileAtomic(file, version(0));
  // The reader runs on its own thread, so it reads while the writer's syscalls are in flight.
  const reader = new Worker(
    `const { readFileSync } = require('node:fs');
     const { parentPort, workerData } = require('node:worker_threads');
     let reads = 0, torn = 0, sample = '', stop = false;
     parentPort.on('message', () => (stop = true));
     (function loop() {
       for (let i = 0; i < 200; i++) {
         let t = '';
         try { t = readFileSync(workerData, 'utf8'); } catch (e) { t = 'ERR ' + e.code; }
         reads++;
         if (!/^FLANNEL_NETWORK=[^]*\\nEND \\d+\\n$/.test(t) || t.length < 4000) { torn++; sample = t.slice(0, 60); }
       }
       if (stop) parentPort.postMessage({ reads, torn, sample });
       else setImmediate(loop);
     })();`,
    { eval: true, workerData: file },
  );
  try {
    await new Promise((r) => setTimeout(r, 50));
    for (let n = 1; n <= 300; n++) await writeFileAtomic(file, version(n));
    reader.postMessage('stop');
    const res = await new Promise<{ reads: number; torn: number; sample: string }>((r) =>
      reader.once('message', r),
    );
    assert.ok(res.reads > 200, `only ${res.reads} reads`);
    assert.equal(
      res.torn,
      0,
      `${res.torn} of ${res.reads} reads saw a partial file: ${JSON.stringify(res.sample)}`,
    );
    assert.equal(readFileSync(file, 'utf8'), version(300));
  } finally {
    await reader.terminate();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a reader holding the old file keeps reading the old version whole', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flt-atomic-'));
  const file = join(dir, 'subnet.env');
  try {
    await writeFileAtomic(file, version(1));
    const fd = openSync(file, 'r');
    try {
      await writeFileAtomic(file, version(2));
      const buf = Buffer.alloc(8192);
      const n = readSync(fd, buf, 0, buf.length, 0);
      assert.equal(buf.subarray(0, n).toString(), version(1));
    } finally {
      closeSync(fd);
    }
    assert.equal(readFileSync(file, 'utf8'), version(2));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the previous subnet is read back from an existing file, only from a whole FLANNEL_SUBNET line', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flt-atomic-'));
  try {
    const file = join(dir, 'subnet.env');
    assert.equal((await readPreviousSubnet(file)).subnet, undefined, 'no file yet');
    await writeFileAtomic(file, version(7));
    const s = (await readPreviousSubnet(file)).subnet;
    assert.equal(s && formatCidr(s), '10.5.7.0/24');
    for (const text of [
      'XFLANNEL_SUBNET=10.5.7.1/24\n',
      'FLANNEL_SUBNET=10.5.7.1/24 trailing\n',
      '# FLANNEL_SUBNET=10.5.7.1/24\n',
    ])
      assert.equal(parseSubnetEnvSubnet(text), undefined, text);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
