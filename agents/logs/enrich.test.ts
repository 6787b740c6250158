import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { MetadataCache, enrich, metaFromConfig, serviceOf, type ContainerMeta } from './enrich.js';
import { partsOf } from './shipper.js';

const meta = (labels: Record<string, string>, env: Record<string, string> = {}): ContainerMeta => ({
  name: 'web-1',
  labels,
  env,
});

test('serviceOf: label, env, Compose label, container name, then the tag of a non-Docker client', () => {
  const cases: [string, Parameters<typeof serviceOf>, string][] = [
    [
      'service field sent by the driver (labels=service)',
      [{ service: 'a' }, meta({ service: 'b' })],
      'a',
    ],
    ['SERVICE_NAME sent by the driver (env=SERVICE_NAME)', [{ SERVICE_NAME: 'e' }], 'e'],
    ['service label from metadata', [{ container_name: '/web-1' }, meta({ service: 'b' })], 'b'],
    [
      'SERVICE_NAME env from metadata',
      [{ container_name: '/web-1' }, meta({}, { SERVICE_NAME: 'f' })],
      'f',
    ],
    [
      'Compose service label (docker compose up)',
      [{ container_name: '/proj-web-1' }, meta({ 'com.docker.compose.service': 'web' })],
      'web',
    ],
    [
      'service label before the Compose label',
      [{}, meta({ service: 's', 'com.docker.compose.service': 'web' })],
      's',
    ],
    [
      'SERVICE_NAME env before the Compose label',
      [{}, meta({ 'com.docker.compose.service': 'web' }, { SERVICE_NAME: 'f' })],
      'f',
    ],
    [
      'Compose label sent by the driver (labels=com.docker.compose.service)',
      [{ container_name: '/proj-web-1', 'com.docker.compose.service': 'web' }],
      'web',
    ],
    [
      'empty Compose label falls through',
      [{ container_name: '/web-1' }, meta({ 'com.docker.compose.service': '' })],
      'web-1',
    ],
    ['empty label falls through', [{ container_name: '/web-1' }, meta({ service: '' })], 'web-1'],
    ['container name without metadata', [{ container_name: '/web-2' }], 'web-2'],
    ['a Fluent Bit client: its tag', [{ message: 'hi' }, undefined, 'app.backend'], 'app.backend'],
    ['nothing at all', [{}], 'unknown'],
  ];
  for (const [name, args, want] of cases) assert.equal(serviceOf(...args), want, name);
  assert.equal(enrich({ log: 'x' }, 'h1', undefined, 'fluentbit.tag').service, 'fluentbit.tag');
});

test('metaFromConfig: name, labels, env from config.v2.json; max-size from hostconfig.json', () => {
  const m = metaFromConfig(
    JSON.stringify({
      Name: '/web-1',
      Config: { Labels: { service: 'web' }, Env: ['A=1', 'B=x=y', 'bad'] },
    }),
    JSON.stringify({ LogConfig: { Type: 'json-file', Config: { 'max-size': '50m' } } }),
  );
  assert.deepEqual(m, {
    name: 'web-1',
    labels: { service: 'web' },
    env: { A: '1', B: 'x=y' },
    maxSize: 50 << 20,
  });
  assert.deepEqual(metaFromConfig('{"Name":"/x","Config":{"Labels":null,"Env":null}}'), {
    name: 'x',
    labels: {},
    env: {},
  });
  assert.throws(() => metaFromConfig('{'));
});

/** A dockerode stand-in: inspect answers from a script of results. */
function fakeDocker(script: (() => Promise<unknown>)[]): { docker: Docker; calls: () => number } {
  let n = 0;
  const docker = {
    getContainer: () => ({
      inspect: () => (script[Math.min(n++, script.length - 1)] as () => Promise<unknown>)(),
    }),
  } as unknown as Docker;
  return { docker, calls: () => n };
}
const info = { Name: '/web-1', Config: { Labels: { service: 'web' }, Env: [] } };
const fail = () => Promise.reject(new Error('connection reset'));
const gone = () =>
  Promise.reject(Object.assign(new Error('no such container'), { statusCode: 404 }));
const ok = () => Promise.resolve(info);

test('MetadataCache: a failed lookup is retried until dockerd answers, and the answer kept', async () => {
  const { docker, calls } = fakeDocker([fail, fail, ok]);
  const c = new MetadataCache(docker, undefined, 100, 500, 5000);
  assert.equal(c.known('a'.repeat(64)), false);
  const m = await c.get('a'.repeat(64));
  assert.equal(m?.labels.service, 'web');
  assert.equal(calls(), 3);
  assert.equal(c.known('a'.repeat(64)), true);
  await c.get('a'.repeat(64));
  assert.equal(calls(), 3, 'asked once');
});

test('MetadataCache: "no such container" answers at once; a failure past the bound is not remembered', async () => {
  const g = fakeDocker([gone]);
  assert.equal(await new MetadataCache(g.docker).get('b'.repeat(64)), undefined);
  assert.equal(g.calls(), 1);
  const f = fakeDocker([fail, fail, fail, fail, fail, ok]);
  const c = new MetadataCache(f.docker, undefined, 100, 100, 150);
  assert.equal(await c.get('c'.repeat(64)), undefined, 'gave up within the bound');
  assert.equal(c.known('c'.repeat(64)), false, 'not remembered as an answer');
  const before = f.calls();
  await c.get('c'.repeat(64));
  assert.ok(f.calls() > before, 'the next record asks again');
});

test('MetadataCache reads config.v2.json from the containers directory without asking dockerd', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flt-meta-'));
  try {
    const id = 'd'.repeat(64);
    mkdirSync(join(dir, id));
    writeFileSync(
      join(dir, id, 'config.v2.json'),
      JSON.stringify({ Name: '/db', Config: { Labels: { service: 'db' } } }),
    );
    const { docker, calls } = fakeDocker([fail]);
    const c = new MetadataCache(docker, dir);
    assert.equal(c.known(id), true);
    assert.equal(c.resolved(id)?.labels.service, 'db');
    assert.equal(calls(), 0);
    assert.equal(c.known('e'.repeat(64)), false, 'no config: not known (yet)');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('partsOf: consecutive blocks of one service become one part', () => {
  const b = (service: string, count: number, bytes: number, tmin: number, tmax: number) => ({
    firstSeq: 1,
    count,
    meta: { service, tmin, tmax },
    blob: Buffer.alloc(bytes),
  });
  assert.deepEqual(
    partsOf([b('a', 1, 10, 5, 5), b('a', 2, 20, 3, 9), b('b', 1, 7, 1, 1), b('a', 1, 1, 2, 2)]),
    [
      ['a', 3, 30, 3, 9],
      ['b', 1, 7, 1, 1],
      ['a', 1, 1, 2, 2],
    ],
  );
  assert.deepEqual(partsOf([]), []);
});
