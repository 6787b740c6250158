import { test } from 'node:test';
import assert from 'node:assert/strict';
import type Docker from 'dockerode';
import {
  desiredInstances,
  registratorServices,
  serviceCheck,
  serviceMetadata,
  type RegistratorService,
} from './registrator-meta.js';

const inspect = (o: {
  running?: boolean;
  labels?: Record<string, string>;
  env?: string[];
  ip?: string;
  exposed?: string[];
  image?: string;
  health?: string;
}) =>
  ({
    Id: 'abcdef0123456789abcdef',
    State: { Running: o.running ?? true, ...(o.health ? { Health: { Status: o.health } } : {}) },
    Config: {
      Image: o.image ?? 'nginx:1.25',
      Env: o.env ?? ['PATH=/bin'],
      Labels: o.labels ?? {},
      ExposedPorts: Object.fromEntries((o.exposed ?? []).map((p) => [p, {}])),
    },
    NetworkSettings: { Networks: { bridge: { IPAddress: o.ip ?? '172.17.0.2' } } },
  }) as unknown as Docker.ContainerInspectInfo;

const opts = {
  prefix: '/skydns',
  zone: 'skydns.local.',
  ttl: 15,
  hostname: 'core-01',
  defaults: { intervalMs: 3000, timeoutMs: 1000 },
};

test('SERVICE_* metadata: env, then labels over it; other variables ignored', () => {
  const m = serviceMetadata(['SERVICE_NAME=a', 'SERVICE_TAGS=x=y', 'PATH=/bin', 'SERVICE_BAD'], {
    SERVICE_NAME: 'b',
    service: 'c',
  });
  assert.deepEqual(
    [...m],
    [
      ['SERVICE_NAME', 'b'],
      ['SERVICE_TAGS', 'x=y'],
    ],
  );
});

test('registrator conventions → services (name, id, port, tags, check)', () => {
  const svc = (
    name: string,
    id: string,
    port: number,
    extra: Partial<RegistratorService> = {},
  ) => ({
    name,
    id,
    port,
    tags: [],
    check: {},
    ...extra,
  });
  const cases: [string, Parameters<typeof inspect>[0], RegistratorService[], RegExp[]][] = [
    ['no SERVICE_NAME: skipped (-explicit)', { exposed: ['80/tcp'] }, [], []],
    [
      'SERVICE_NAME, one port',
      { env: ['SERVICE_NAME=Web'], exposed: ['80/tcp'] },
      [svc('web', 'abcdef012345', 80)],
      [],
    ],
    [
      'SERVICE_NAME without ports: port 0',
      { env: ['SERVICE_NAME=web'] },
      [svc('web', 'abcdef012345', 0)],
      [],
    ],
    [
      'label wins over env',
      { env: ['SERVICE_NAME=a'], labels: { SERVICE_NAME: 'b' }, exposed: ['80/tcp'] },
      [svc('b', 'abcdef012345', 80)],
      [],
    ],
    [
      'SERVICE_ID',
      { env: ['SERVICE_NAME=web', 'SERVICE_ID=blue1'], exposed: ['80/tcp'] },
      [svc('web', 'blue1', 80)],
      [],
    ],
    [
      'SERVICE_IGNORE',
      { env: ['SERVICE_NAME=web', 'SERVICE_IGNORE=true'], exposed: ['80/tcp'] },
      [],
      [],
    ],
    [
      'several ports: name-port, id-port; SERVICE_<port>_NAME as given; SERVICE_<port>_IGNORE',
      {
        env: ['SERVICE_NAME=app', 'SERVICE_9000_NAME=metrics', 'SERVICE_22_IGNORE=1'],
        exposed: ['8080/tcp', '9000/tcp', '22/tcp', '8080/udp'],
      },
      [svc('app-8080', 'abcdef012345-8080', 8080), svc('metrics', 'abcdef012345-9000', 9000)],
      [],
    ],
    [
      'SERVICE_<port>_NAME alone',
      { env: ['SERVICE_443_NAME=tls'], exposed: ['80/tcp', '443/tcp'] },
      [svc('tls', 'abcdef012345-443', 443)],
      [],
    ],
    [
      'tags and checks, per-port values over the general ones',
      {
        env: [
          'SERVICE_NAME=web',
          'SERVICE_TAGS=blue, canary,,',
          'SERVICE_CHECK_HTTP=/health',
          'SERVICE_CHECK_INTERVAL=1s',
          'SERVICE_80_CHECK_TIMEOUT=200ms',
        ],
        exposed: ['80/tcp'],
      },
      [
        svc('web', 'abcdef012345', 80, {
          tags: ['blue', 'canary'],
          check: { http: '/health', interval: '1s', timeout: '200ms' },
        }),
      ],
      [],
    ],
    [
      "Flotilla's service label (+ service.port)",
      {
        labels: { service: 'api', 'service.port': '9000' },
        env: ['SERVICE_CHECK_TCP=true'],
        exposed: ['80/tcp'],
      },
      [svc('api', 'abcdef012345', 9000, { check: { tcp: 'true' } })],
      [],
    ],
    [
      'service label, first exposed port',
      { labels: { service: 'web' }, exposed: ['8080/tcp', '443/tcp'] },
      [svc('web', 'abcdef012345', 443)],
      [],
    ],
    [
      'bad name',
      { labels: { service: 'bad/name' } },
      [],
      [/label service: service name "bad\/name" is not a DNS name/],
    ],
    [
      'registrator-style id is not a label',
      { env: ['SERVICE_NAME=web', 'SERVICE_ID=host:web:80'] },
      [],
      [/service id "host:web:80" is not one DNS label/],
    ],
    [
      'two ports, same name and id',
      {
        env: ['SERVICE_80_NAME=web', 'SERVICE_81_NAME=web', 'SERVICE_ID=x'],
        exposed: ['80/tcp', '81/tcp'],
      },
      [svc('web', 'x', 80)],
      [/SERVICE_81_NAME: x\.web is already announced for another port/],
    ],
  ];
  for (const [what, o, services, errors] of cases) {
    const got = registratorServices(inspect(o));
    assert.deepEqual(got.services, services, what);
    assert.equal(got.errors.length, errors.length, `${what}: ${got.errors.join('; ')}`);
    errors.forEach((re, i) => assert.match(got.errors[i]!, re, what));
  }
});

test('SERVICE_CHECK_* → check spec: path on the container, defaults, bad values named', () => {
  const s = (check: RegistratorService['check'], port = 80): RegistratorService => ({
    name: 'web',
    id: 'x',
    port,
    tags: [],
    check,
  });
  const d = { intervalMs: 3000, timeoutMs: 1000 };
  assert.equal(serviceCheck(s({}), '172.17.0.2', d), null);
  assert.deepEqual(serviceCheck(s({ http: '/health' }), '172.17.0.2', d), {
    target: { kind: 'http', url: 'http://172.17.0.2:80/health' },
    intervalMs: 3000,
    timeoutMs: 1000,
    rise: 1,
    fall: 1,
  });
  assert.deepEqual(serviceCheck(s({ tcp: 'true', interval: '500ms' }, 6379), '172.17.0.2', d), {
    target: { kind: 'tcp', host: '172.17.0.2', port: 6379 },
    intervalMs: 500,
    timeoutMs: 500,
    rise: 1,
    fall: 1,
  });
  for (const [check, re] of [
    [{ http: '/h', tcp: 'true' }, /not both/],
    [{ http: 'health' }, /SERVICE_CHECK_HTTP: "health" is neither a URL/],
    [{ tcp: 'x:y' }, /SERVICE_CHECK_TCP: "x:y" is not HOST:PORT/],
    [{ http: '/h', interval: '3' }, /SERVICE_CHECK_INTERVAL: "3" is not a duration/],
    [
      { http: '/h', interval: '1s', timeout: '2s' },
      /SERVICE_CHECK_TIMEOUT: 2000 ms must not exceed SERVICE_CHECK_INTERVAL \(1000 ms\)/,
    ],
  ] as const)
    assert.throws(() => serviceCheck(s(check), '172.17.0.2', d), re, JSON.stringify(check));
});

test('desired instances: key, record with tags as TXT, metadata, Docker health; none when not running', () => {
  const { instances, errors } = desiredInstances(
    inspect({
      env: ['SERVICE_NAME=web', 'SERVICE_TAGS=blue,canary', 'SERVICE_CHECK_HTTP=/health'],
      exposed: ['80/tcp'],
      image: 'nginx:1.25-alpine',
      health: 'starting',
    }),
    opts,
  );
  assert.deepEqual(errors, []);
  assert.equal(instances.length, 1);
  const i = instances[0]!;
  assert.equal(i.key, '/skydns/local/skydns/web/abcdef012345');
  assert.equal(i.record, '{"host":"172.17.0.2","port":80,"text":"blue,canary","ttl":15}');
  assert.deepEqual(i.meta, { hostname: 'core-01', version: '1.25-alpine' });
  assert.equal(i.docker, 'starting');
  assert.deepEqual(i.check?.target, { kind: 'http', url: 'http://172.17.0.2:80/health' });
  // The old label convention gives the same records as before.
  const legacy = desiredInstances(
    inspect({ labels: { service: 'web' }, exposed: ['80/tcp'] }),
    opts,
  );
  assert.equal(legacy.instances[0]!.record, '{"host":"172.17.0.2","port":80,"ttl":15}');
  assert.equal(legacy.instances[0]!.check, null);
  for (const o of [{ running: false }, { ip: '' }])
    assert.deepEqual(
      desiredInstances(inspect({ labels: { service: 'web' }, ...o }), opts).instances,
      [],
    );
  const bad = desiredInstances(
    inspect({ env: ['SERVICE_NAME=web', 'SERVICE_CHECK_TCP=nope'] }),
    opts,
  );
  assert.deepEqual(bad.instances, []);
  assert.match(bad.errors[0]!, /abcdef012345\.web: SERVICE_CHECK_TCP: "nope" is not HOST:PORT/);
  // A changed check or image is a new fingerprint (re-announced); the same container is not.
  const again = desiredInstances(
    inspect({
      env: ['SERVICE_NAME=web', 'SERVICE_TAGS=blue,canary', 'SERVICE_CHECK_HTTP=/health'],
      exposed: ['80/tcp'],
      image: 'nginx:1.25-alpine',
      health: 'healthy',
    }),
    opts,
  ).instances[0]!;
  assert.equal(again.fingerprint, i.fingerprint);
  const other = desiredInstances(
    inspect({ env: ['SERVICE_NAME=web', 'SERVICE_CHECK_HTTP=/ready'], exposed: ['80/tcp'] }),
    opts,
  ).instances[0]!;
  assert.notEqual(other.fingerprint, i.fingerprint);
});
