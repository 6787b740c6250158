/**
 * Health-checked DNS on the harness (one host, a real dockerd): four instances, each toggled
 * failing and passing again while a client container digs through dnsd —
 *   - `announce --check-http /health` on a web container,
 *   - `announce --check-tcp 9000` on a container whose TCP server is killed and restarted,
 *   - `announce --container` on a container whose Docker HEALTHCHECK turns unhealthy,
 *   - registrator mode (`dnsd --docker`) with SERVICE_NAME + SERVICE_CHECK_HTTP (+ TAGS → TXT,
 *     and a SERVICE_IGNORE container that is never announced).
 * A failing instance must leave the answers within interval + timeout + 1 s (measured from
 * before the toggle) and return within one interval of passing again (from after it, plus
 * 500 ms for the probe, etcd and the watch); the announcers keep running throughout.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { Etcd3 } from 'etcd3';
import {
  alive,
  startCluster,
  TEST_IMAGE,
  waitFor,
  type Cluster,
  type Host,
} from '../harness/index.js';
import { T } from '../../agents/dns/lookup.js';
import { WITHDRAWN_PREFIX } from '../../agents/dns/instances.js';
import { buildQuery, parse, udpAsk } from '../../agents/dns/testdata.js';

const node = process.execPath;
const INTERVAL = 1000;
const TIMEOUT = 500;
let cluster: Cluster;
let h: Host;
let etcd: Etcd3;

before(async () => {
  cluster = await startCluster({
    name: 'dnshealth',
    hosts: 1,
    docker: () => ({ bip: '172.29.0.1/16' }),
  });
  h = cluster.hosts[0]!;
  etcd = new Etcd3({ hosts: cluster.etcdEndpoints });
});
after(async () => {
  etcd?.close();
  await cluster?.stop();
});

async function container(
  name: string,
  cmd: string,
  extra: Partial<Docker.ContainerCreateOptions> = {},
): Promise<{ id: string; ip: string }> {
  const c = await h.docker.createContainer({
    Image: TEST_IMAGE,
    name,
    Cmd: ['sh', '-c', cmd],
    ...extra,
  } as Docker.ContainerCreateOptions);
  await c.start();
  return { id: c.id, ip: await h.containerIp(c.id) };
}

async function exec(id: string, cmd: string): Promise<void> {
  const r = await h.execIn(id, ['sh', '-c', cmd]);
  assert.equal(r.code, 0, `${cmd}: ${r.stderr}`);
}

const addresses = async (name: string) =>
  (
    parse((await udpAsk(53, buildQuery(name, T.A), 1000, h.ip))!).answers as unknown as {
      address: string;
    }[]
  )
    .map((a) => a.address)
    .sort();

test(
  'failing instances leave DNS answers within interval + timeout + 1 s and return within an interval of passing',
  { timeout: 180_000 },
  async () => {
    const ep = cluster.etcdEndpoints[0]!;
    // The health files live in host directories bind-mounted into the containers, so the test
    // flips an instance's health at a known instant (no `docker exec` start-up inside the timing).
    const state = (name: string) => {
      const d = join(cluster.dir, 'health-state', name);
      mkdirSync(d, { recursive: true });
      return d;
    };
    const webDir = state('web');
    const regDir = state('reg');
    const dhDir = state('dh');
    const bind = (dir: string, at: string) => ({ HostConfig: { Binds: [`${dir}:${at}`] } });
    const webCmd = 'echo ok > /www/health && exec httpd -f -p 80 -h /www';
    const web = await container('hc-web', webCmd, bind(webDir, '/www'));
    const tcp = await container('hc-tcp', 'httpd -p 9000 -h /var/www && exec sleep 3600');
    const dh = await container('hc-dh', 'touch /flag/ok && exec sleep 3600', {
      ...bind(dhDir, '/flag'),
      Healthcheck: {
        Test: ['CMD-SHELL', 'test -f /flag/ok'],
        Interval: 1e9,
        Timeout: 1e9,
        Retries: 1,
      },
    });
    const reg = await container('hc-reg', webCmd, {
      ...bind(regDir, '/www'),
      Env: [
        'SERVICE_NAME=reg',
        'SERVICE_CHECK_HTTP=/health',
        'SERVICE_CHECK_INTERVAL=1s',
        'SERVICE_CHECK_TIMEOUT=500ms',
        'SERVICE_TAGS=blue,canary',
      ],
      ExposedPorts: { '80/tcp': {} },
    });
    await container('hc-ign', 'exec sleep 3600', {
      Env: ['SERVICE_NAME=ign', 'SERVICE_IGNORE=true'],
    });
    const client = await container('hc-client', 'exec sleep 3600');

    h.spawn(
      [
        node,
        'dist/agents/dns/main.js',
        '--addr',
        `${h.ip}:53`,
        '--etcd-endpoints',
        ep,
        '--no-rec',
        '--metrics-addr',
        `${h.ip}:9153`,
        '--docker',
        '--docker-host',
        h.dockerSocket,
      ],
      { logName: 'dnsd' },
    );
    const sidekick = (name: string, ctr: string, args: string[]) =>
      h.spawn(
        [
          node,
          'dist/agents/dns/announce-main.js',
          '--name',
          name,
          '--container',
          ctr,
          '--ttl',
          '10',
          '--docker-host',
          h.dockerSocket,
          '--etcd-endpoints',
          ep,
          ...args,
        ],
        { logName: `announce-${ctr}` },
      );
    const timing = ['--check-interval', `${INTERVAL}ms`, '--check-timeout', `${TIMEOUT}ms`];
    const sidekicks = [
      sidekick('w1.hc.skydns.local', 'hc-web', [
        '--port',
        '80',
        '--check-http',
        '/health',
        ...timing,
      ]),
      sidekick('t1.tcp.skydns.local', 'hc-tcp', [
        '--port',
        '9000',
        '--check-tcp',
        '9000',
        ...timing,
      ]),
      sidekick('d1.dh.skydns.local', 'hc-dh', ['--port', '80']),
    ];
    // Each toggle resolves at the instant the instance's health changed: a host file removed or
    // written, or (TCP) the `docker exec` that killed or restarted the listener returned.
    const file = (path: string) => ({
      fail: async () => rmSync(path),
      pass: async () => writeFileSync(path, 'ok\n'),
    });
    const cases = [
      { name: 'hc.skydns.local', ip: web.ip, ...file(join(webDir, 'health')) },
      {
        name: 'tcp.skydns.local',
        ip: tcp.ip,
        fail: () => exec(tcp.id, 'killall httpd'),
        pass: () => exec(tcp.id, 'httpd -p 9000 -h /var/www'),
      },
      { name: 'dh.skydns.local', ip: dh.ip, ...file(join(dhDir, 'ok')) },
      { name: 'reg.skydns.local', ip: reg.ip, ...file(join(regDir, 'health')) },
    ];
    const digAll = async () => {
      const script = [...cases.map((c) => c.name), 'ign.skydns.local']
        .map(
          (n) =>
            `echo "${n} $(dig +short ${n} | tr '\\n' ' ')$(dig ${n} | grep -o 'status: [A-Z]*')"`,
        )
        .join('; ');
      const r = await h.execIn(client.id, [
        'sh',
        '-c',
        `${script}; echo "txt $(dig +short TXT reg.skydns.local)"`,
      ]);
      assert.equal(r.code, 0, r.stderr);
      return r.stdout.trim().split('\n');
    };

    await waitFor(
      'all four instances answered',
      async () =>
        (await Promise.all(cases.map((c) => addresses(c.name)))).every((a) => a.length === 1),
      30_000,
      100,
    );
    assert.deepEqual(await digAll(), [
      ...cases.map((c) => `${c.name} ${c.ip} status: NOERROR`),
      'ign.skydns.local status: NXDOMAIN',
      'txt "blue,canary"',
    ]);

    // Toggle every instance failing at once; each must leave the answers within its bound.
    const gone = await Promise.all(
      cases.map(async (c) => {
        await c.fail();
        const t0 = Date.now();
        await waitFor(
          `${c.name} withdrawn`,
          async () => (await addresses(c.name)).length === 0,
          10_000,
          25,
        );
        return Date.now() - t0;
      }),
    );
    const failBound = INTERVAL + TIMEOUT + 1000;
    // Docker's own HEALTHCHECK: interval 1 s, timeout 1 s.
    const bounds = [failBound, failBound, 1000 + 1000 + 1000, failBound];
    cases.forEach((c, i) =>
      assert.ok(
        gone[i]! <= bounds[i]!,
        `${c.name} left the answers after ${gone[i]} ms (bound ${bounds[i]} ms)`,
      ),
    );
    assert.deepEqual(await digAll(), [
      ...cases.map((c) => `${c.name} status: NXDOMAIN`),
      'ign.skydns.local status: NXDOMAIN',
      'txt',
    ]);
    // Withdrawn, not gone: the announcers keep running and the records wait outside the DNS prefix.
    for (const p of sidekicks) assert.ok(alive(p.pid), 'announce keeps running while failing');
    const withdrawn = await etcd.getAll().prefix(`${WITHDRAWN_PREFIX}/skydns/`).strings();
    assert.deepEqual(
      Object.keys(withdrawn)
        .map((k) => k.split('/').slice(-2)[0])
        .sort(),
      ['dh', 'hc', 'reg', 'tcp'],
    );
    for (const v of Object.values(withdrawn)) assert.equal(JSON.parse(v).health, 'failing');
    const failingMetrics = await (await fetch(`http://${h.ip}:9153/metrics`)).text();
    assert.match(failingMetrics, /flotilla_dns_failing_instances 1\b/);
    assert.match(failingMetrics, /flotilla_dns_check_failures_total [1-9]/);

    // Passing again: back within one interval, plus 500 ms for the probe, etcd and the watch
    // (Docker's: its interval, plus the time its own check takes, at most its 1 s timeout).
    const back = await Promise.all(
      cases.map(async (c) => {
        await c.pass();
        const t0 = Date.now();
        await waitFor(
          `${c.name} back`,
          async () => (await addresses(c.name)).length === 1,
          10_000,
          25,
        );
        return Date.now() - t0;
      }),
    );
    const passBounds = [INTERVAL + 500, INTERVAL + 500, 1000 + 1000 + 500, INTERVAL + 500];
    cases.forEach((c, i) =>
      assert.ok(
        back[i]! <= passBounds[i]!,
        `${c.name} back after ${back[i]} ms (bound ${passBounds[i]} ms)`,
      ),
    );
    assert.deepEqual(await digAll(), [
      ...cases.map((c) => `${c.name} ${c.ip} status: NOERROR`),
      'ign.skydns.local status: NXDOMAIN',
      'txt "blue,canary"',
    ]);
    const m = await (await fetch(`http://${h.ip}:9153/metrics`)).text();
    assert.match(m, /flotilla_dns_failing_instances 0\b/);
    assert.match(m, /flotilla_dns_checks_total [1-9]/);
    process.stderr.write(
      `dns-health: withdrawn after ${cases.map((c, i) => `${c.name} ${gone[i]} ms`).join(', ')}; ` +
        `back after ${cases.map((c, i) => `${c.name} ${back[i]} ms`).join(', ')}\n`,
    );
  },
);
