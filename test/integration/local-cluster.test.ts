// End to end: the cluster `npm start` brings up — every agent started from its unit file — shows
// cross-host HTTP over the overlay, DNS answers with both nginx instances, and log lines from both
// hosts; teardown leaves nothing behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { alive, listNamespaces, run, waitFor } from '../harness/index.js';
import {
  demonstrate,
  etcdctlArgv,
  logSecrets,
  REPO,
  upLocalCluster,
  OVERLAY_NETWORK,
} from '../../scripts/local-cluster.js';
import { alerts } from '../../scripts/monitoring.js';
import { envScript, operatorEtcdTls } from '../../scripts/cluster-env.js';
import { ensureDevBin } from '../../scripts/dev-bin.js';

async function promTargets(url: string): Promise<{ job: string; health: string }[]> {
  const r = (await (await fetch(`${url}/api/v1/targets`)).json()) as {
    data: { activeTargets: { labels: { job: string }; health: string }[] };
  };
  return r.data.activeTargets.map((t) => ({ job: t.labels.job, health: t.health }));
}

function inNetwork(ip: string, cidr: string): boolean {
  const [base, len] = cidr.split('/') as [string, string];
  const toInt = (a: string) => a.split('.').reduce((n, o) => n * 256 + Number(o), 0);
  const mask = len === '0' ? 0 : (~0 << (32 - Number(len))) >>> 0;
  return (toInt(ip) & mask) >>> 0 === (toInt(base) & mask) >>> 0;
}

test(
  'the local cluster serves HTTP across hosts, DNS for both nginx instances, and their logs',
  { timeout: 240_000 },
  async (t) => {
    const t0 = Date.now();
    const lc = await upLocalCluster();
    const upSeconds = (Date.now() - t0) / 1000;
    const { cluster } = lc;
    const pids = () => cluster.state.pids.map((p) => p.pid);
    const started = pids();
    try {
      // Start-up time is a figure, not an assertion (the test's timeout bounds a hang).
      t.diagnostic(`local cluster up in ${upSeconds.toFixed(1)} s`);
      const demo = await demonstrate(lc);

      // Every agent runs on the project's Node.js 24 (the runtime setup.sh installs), whatever
      // Node.js the machine has.
      const agents = cluster.state.pids.filter((p) => /dist\/agents\//.test(p.what));
      assert.ok(agents.length >= 9, agents.map((p) => p.what).join(', '));
      for (const p of agents) {
        const exe = readlinkSync(`/proc/${p.pid}/exe`);
        const v = execFileSync(exe, ['--version'], { encoding: 'utf8' }).trim();
        assert.match(v, /^v24\./, `${p.what} (pid ${p.pid}) runs ${exe} ${v}`);
      }

      // One lease per host, inside the overlay network, each naming its host's underlay address.
      assert.equal(demo.leases.length, 3);
      assert.deepEqual(
        demo.leases.map((l) => l.publicIp).sort(),
        cluster.hosts.map((h) => h.ip).sort(),
      );
      for (const l of demo.leases)
        assert.ok(inNetwork(l.subnet.split('/')[0]!, OVERLAY_NETWORK), l.subnet);

      // nginx containers have overlay addresses; host 1 fetched the page from host 3's.
      for (const ip of demo.dig.nginxIps)
        assert.ok(inNetwork(ip, OVERLAY_NETWORK), `${ip} not on the overlay`);
      assert.equal(demo.fetched.body, 'hello from flotilla-test\n');
      // By the short name: the drop-in's --dns-search, dnsd's answer, an nginx on host 2 or 3.
      assert.equal(demo.short.body, 'hello from flotilla-test\n');

      // dig web.skydns.local from a container answers exactly both instances.
      assert.deepEqual(demo.dig.answer, [...demo.dig.nginxIps].sort());

      // logs tail --service nginx has lines from both hosts' containers.
      for (const n of lc.nginx) {
        assert.ok(
          demo.logs.lines.some((l) => l.includes(n.host.name) && l.includes(n.container)),
          `no line from ${n.container} on ${n.host.name}:\n${demo.logs.lines.join('\n')}`,
        );
      }

      // etcd as docs/operations.md says to run it: TLS with client certificates, one role per agent.
      const ep = cluster.etcdEndpoints[0]!;
      assert.match(ep, /^https:\/\//);
      const pki = cluster.etcdPki!;
      const etcdctl = (argv: string[]) =>
        run([...argv.slice(0, 1), '--dial-timeout=1s', '--command-timeout=2s', ...argv.slice(1)], {
          timeoutMs: 10_000,
        });
      const get = ['get', '--print-value-only', '/coreos.com/network/config'];
      const asRoot = await etcdctl(etcdctlArgv(cluster, 'root', get));
      assert.equal(asRoot.code, 0, asRoot.stderr);
      assert.match(asRoot.stdout, new RegExp(OVERLAY_NETWORK));
      // Plain http to etcd's port, and TLS without a client certificate: no answer at all.
      const plain = await etcdctl([
        'etcdctl',
        '--endpoints',
        ep.replace(/^https:/, 'http:'),
        ...get,
      ]);
      assert.notEqual(plain.code, 0, `plain http client got: ${plain.stdout}`);
      assert.equal(plain.stdout, '');
      // Nor etcd's HTTP API (v2 keys, the v3 JSON gateway) over plain http: the connection ends.
      await assert.rejects(
        fetch(`${ep.replace(/^https:/, 'http:')}/v2/keys/coreos.com/network/config`),
      );
      const noCert = await etcdctl([
        'etcdctl',
        '--endpoints',
        ep,
        `--cacert=${pki}/ca.pem`,
        ...get,
      ]);
      assert.notEqual(noCert.code, 0, `client without a certificate got: ${noCert.stdout}`);
      assert.equal(noCert.stdout, '');
      // Every agent that talks to etcd runs with its own certificate (its CN is its etcd user),
      // and that certificate cannot write outside its role.
      const wantUser: [RegExp, string][] = [
        [/\/overlayd\.service$/, 'overlayd'],
        [/\/dnsd\.service$/, 'dnsd'],
        [/\/nginx-announce@\d+\.service$/, 'announce'],
        [/\/logs-aggregator@\d+\.service$/, 'logsd'],
      ];
      const certs = new Map<string, { cert: string; key: string }>();
      for (const [name, p] of lc.units) {
        const user = wantUser.find(([re]) => re.test(name))?.[1];
        if (!user) continue;
        const argv = readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').split('\0');
        const flag = (f: string) => argv.find((a) => a.startsWith(`--${f}=`))?.slice(f.length + 3);
        const cert = flag('etcd-certfile');
        const key = flag('etcd-keyfile');
        assert.ok(cert && key && flag('etcd-cafile'), `${name}: ${argv.join(' ')}`);
        const subject = execFileSync('openssl', ['x509', '-noout', '-subject', '-in', cert], {
          encoding: 'utf8',
        });
        assert.match(subject, new RegExp(`CN ?= ?${user}$`, 'm'), `${name}: ${cert}`);
        certs.set(user, { cert, key });
      }
      assert.deepEqual([...certs.keys()].sort(), ['announce', 'dnsd', 'logsd', 'overlayd']);
      const outside: Record<string, string> = {
        overlayd: '/skydns/local/skydns/web/evil',
        dnsd: '/skydns/local/skydns/web/evil',
        announce: '/coreos.com/network/subnets/10.5.250.0-24',
        logsd: '/coreos.com/network/config',
      };
      for (const [user, { cert, key }] of certs) {
        const put = await etcdctl([
          'etcdctl',
          '--endpoints',
          ep,
          `--cacert=${pki}/ca.pem`,
          `--cert=${cert}`,
          `--key=${key}`,
          'put',
          outside[user]!,
          '{"host":"10.5.250.9"}',
        ]);
        assert.notEqual(put.code, 0, `${user} wrote ${outside[user]}`);
        assert.match(put.stderr, /permission denied/, `${user}: ${put.stderr}`);
      }
      // The shell of `npm run cluster -- env 1` reaches the secure etcd with every CLI: etcdctl,
      // dnsctl, and logs finding the aggregator through etcd (no --server).
      const shell = envScript({
        host: cluster.hosts[0]!,
        index: 1,
        etcdEndpoints: cluster.etcdEndpoints,
        logsServer: lc.aggregatorHttp,
        logsTokenFile: logSecrets(cluster).tokenFile,
        etcdTls: operatorEtcdTls(pki),
        binDir: ensureDevBin(REPO),
      });
      const cli = await run(
        [
          'bash',
          '-c',
          'eval "$1" && unset LOGS_SERVER FLOTILLA_LOGS_SERVER && etcdctl get --print-value-only /coreos.com/network/config && dnsctl ls && logs services',
          'sh',
          shell,
        ],
        { timeoutMs: 30_000 },
      );
      assert.equal(cli.code, 0, cli.stderr);
      assert.match(cli.stdout, new RegExp(OVERLAY_NETWORK));
      assert.match(cli.stdout, /^1\.web\.skydns\.local\.\s+10\.5\./m);
      assert.match(cli.stdout, /^nginx\s+\d+/m);
      assert.doesNotMatch(cli.stderr, /unrecognized environment variable/);
      const evil = await etcdctl(
        etcdctlArgv(cluster, 'root', [
          'get',
          '--prefix',
          '--keys-only',
          '/skydns/local/skydns/web/evil',
        ]),
      );
      assert.equal(evil.stdout.trim(), '');

      // The aggregator's live tail page (the URL `npm start` prints) is served from the build.
      // Locked: the query API and page want the token npm start made; health stays open.
      const token = readFileSync(logSecrets(lc.cluster).tokenFile, 'utf8').trim();
      const auth = { headers: { authorization: `Bearer ${token}` } };
      assert.equal((await fetch(`${lc.aggregatorHttp}/v1/services`)).status, 401);
      assert.equal((await fetch(`${lc.aggregatorHttp}/v1/services`, auth)).status, 200);
      assert.equal((await fetch(`${lc.aggregatorHttp}/healthz`)).status, 200);
      const page = await fetch(`${lc.aggregatorHttp}/?service=nginx`, auth);
      assert.equal(page.status, 200);
      assert.match(await page.text(), /<script type="module" src="app.js">/);
      assert.equal((await fetch(`${lc.aggregatorHttp}/app.js`, auth)).status, 200);

      // Prometheus scrapes every agent and etcd; logsd killed on host 2 fires FlotillaAgentDown.
      const targets = await waitFor(
        'every Prometheus target up',
        async () => {
          const t = await promTargets(lc.prometheusUrl);
          return t.length > 0 && t.every((x) => x.health === 'up') ? t : undefined;
        },
        30_000,
        500,
      );
      assert.deepEqual([...new Set(targets.map((t) => t.job))].sort(), [
        'dnsd',
        'etcd',
        'logsd-agent',
        'logsd-aggregator',
        'overlayd',
      ]);
      assert.equal(targets.length, 3 * 3 + 1 + cluster.etcdEndpoints.length);
      const h2 = cluster.hosts[1]!;
      const logsd = lc.units.get(`${h2.name}/logsd.service`);
      assert.ok(logsd, [...lc.units.keys()].join(' '));
      await h2.kill(logsd, 0);
      const killedAt = Date.now();
      const firing = await waitFor(
        'FlotillaAgentDown firing for logsd on host 2',
        async () =>
          (await alerts(lc.prometheusUrl)).find(
            (a) =>
              a.state === 'firing' &&
              a.labels['alertname'] === 'FlotillaAgentDown' &&
              a.labels['instance'] === `${h2.ip}:24230`,
          ),
        90_000,
        1000,
      );
      assert.equal(firing.labels['job'], 'logsd-agent');
      // `for: 30s`: not before 30 s after the kill.
      assert.ok(Date.now() - killedAt >= 30_000, `fired after ${Date.now() - killedAt} ms`);
      const others = (await alerts(lc.prometheusUrl)).filter(
        (a) => a.labels['alertname'] === 'FlotillaAgentDown' && a !== firing,
      );
      assert.deepEqual(
        others.map((a) => a.labels['instance']).filter((i) => i !== `${h2.ip}:24230`),
        [],
      );
    } finally {
      await cluster.stop();
    }
    assert.deepEqual(
      listNamespaces().filter((n) => n.startsWith(`flt${cluster.id}-`)),
      [],
    );
    assert.deepEqual(started.filter(alive), []);
    assert.equal(existsSync(cluster.dir), false);
  },
);
