// End to end: the cluster `npm start` brings up — every agent started from its unit file — shows
// cross-host HTTP over the overlay, DNS answers with both nginx instances, and log lines from both
// hosts; teardown leaves nothing behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readlinkSync } from 'node:fs';
import { alive, listNamespaces, waitFor } from '../harness/index.js';
import { demonstrate, upLocalCluster, OVERLAY_NETWORK } from '../../scripts/local-cluster.js';
import { alerts } from '../../scripts/monitoring.js';

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

      // The aggregator's live tail page (the URL `npm start` prints) is served from the build.
      const page = await fetch(`${lc.aggregatorHttp}/?service=nginx`);
      assert.equal(page.status, 200);
      assert.match(await page.text(), /<script type="module" src="app.js">/);
      assert.equal((await fetch(`${lc.aggregatorHttp}/app.js`)).status, 200);

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
