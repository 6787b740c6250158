import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  answersDns,
  checkTiming,
  CheckSpecError,
  cmdTarget,
  combinedHealth,
  dockerHealthOf,
  httpTarget,
  INITIAL_CHECK,
  nextCheck,
  tcpTarget,
  type CheckState,
  type DockerHealth,
  type Health,
} from './health.js';

test('--check-http: a URL as given, a PATH on the announced host and port', () => {
  const cases: [string, string, number, string][] = [
    ['/health', '10.5.7.2', 8080, 'http://10.5.7.2:8080/health'],
    ['/health', '10.5.7.2', 0, 'http://10.5.7.2:80/health'],
    ['/h?x=1', 'fd00::2', 80, 'http://[fd00::2]:80/h?x=1'],
    ['/health', 'web.example.', 81, 'http://web.example:81/health'],
    ['http://127.0.0.1:9000/ready', '10.5.7.2', 80, 'http://127.0.0.1:9000/ready'],
    ['HTTPS://Example.com/x', '', 0, 'https://example.com/x'],
  ];
  for (const [v, host, port, url] of cases)
    assert.deepEqual(httpTarget(v, host, port), { kind: 'http', url }, v);
  for (const [v, host, re] of [
    ['health', '10.0.0.1', /neither a URL .* nor a path like \/health/],
    ['ftp://x/y', '10.0.0.1', /neither a URL/],
    ['/health', '', /has no host/],
  ] as const)
    assert.throws(
      () => httpTarget(v, host, 80),
      (e: Error) => e instanceof CheckSpecError && re.test(e.message),
      v,
    );
});

test('--check-tcp: HOST:PORT, [v6]:PORT, PORT on the host, true = host:port', () => {
  const cases: [string, string, number, { host: string; port: number }][] = [
    ['127.0.0.1:6379', '10.5.7.2', 80, { host: '127.0.0.1', port: 6379 }],
    ['[::1]:53', '10.5.7.2', 80, { host: '::1', port: 53 }],
    ['db.local:5432', '', 0, { host: 'db.local', port: 5432 }],
    ['9000', '10.5.7.2', 80, { host: '10.5.7.2', port: 9000 }],
    ['true', '10.5.7.2', 8080, { host: '10.5.7.2', port: 8080 }],
  ];
  for (const [v, host, port, want] of cases)
    assert.deepEqual(tcpTarget(v, host, port), { kind: 'tcp', ...want }, v);
  for (const [v, host, port, re] of [
    ['70000', '10.0.0.1', 80, /not a port 1..65535/],
    ['host:0', '10.0.0.1', 80, /not HOST:PORT, PORT or true/],
    ['host', '10.0.0.1', 80, /not HOST:PORT/],
    ['true', '10.0.0.1', 0, /no port to check/],
    ['80', '', 0, /needs the instance's host/],
  ] as const)
    assert.throws(() => tcpTarget(v, host, port), re, v);
  assert.deepEqual(cmdTarget('curl -f localhost'), { kind: 'cmd', command: 'curl -f localhost' });
  assert.throws(() => cmdTarget('  '), /empty/);
});

test('check timing: positive interval and timeout, timeout within the interval, rise/fall ≥ 1', () => {
  const ok = { intervalMs: 3000, timeoutMs: 1000, rise: 1, fall: 1 };
  assert.deepEqual(checkTiming(ok), ok);
  for (const [patch, re] of [
    [{ intervalMs: 0 }, /: interval: must be above 0/],
    [{ timeoutMs: 0 }, /: timeout: must be above 0/],
    [{ timeoutMs: 5000 }, /: timeout: 5000 ms must not exceed interval \(3000 ms\)/],
    [{ rise: 0 }, /: rise: must be a whole number of at least 1/],
    [{ fall: 1.5 }, /: fall: must be a whole number/],
  ] as const)
    assert.throws(() => checkTiming({ ...ok, ...patch }), re, JSON.stringify(patch));
  const flags = {
    interval: '--check-interval',
    timeout: '--check-timeout',
    rise: '--check-rise',
    fall: '--check-fall',
  };
  assert.throws(
    () => checkTiming({ ...ok, timeoutMs: 5000 }, flags),
    /^CheckSpecError: --check-timeout: 5000 ms must not exceed --check-interval \(3000 ms\)$/,
  );
});

test('rise/fall: down until `rise` passes in a row, up until `fall` failures in a row', () => {
  // [rise, fall, probe results, health after each: Starting, Passing (in DNS), Failing]
  const cases: [number, number, string, string][] = [
    [1, 1, 'PFPP', 'PFPP'],
    [2, 1, 'PPFPP', 'SPFFP'],
    [1, 3, 'PFFPFFF', 'PPPPPPF'],
    [3, 2, 'PPFPPPFPF', 'SSFFFPPPP'],
    [2, 2, 'FFPFPP', 'FFFFFP'],
    [2, 2, 'PFFPP', 'SFFFP'],
  ];
  for (const [rise, fall, results, want] of cases) {
    let s: CheckState = INITIAL_CHECK;
    const got = [...results]
      .map((r) => {
        s = nextCheck(s, r === 'P', rise, fall);
        return combinedHealth(s, 'none')[0]!.toUpperCase();
      })
      .join('');
    assert.equal(got, want, `rise ${rise} fall ${fall} ${results}`);
  }
});

test('health from the check and Docker HEALTHCHECK; only passing and unchecked are in DNS', () => {
  const up = { up: true, passes: 1, fails: 0, failed: false };
  const down = { up: false, passes: 0, fails: 1, failed: true };
  const rising = { up: false, passes: 1, fails: 0, failed: false };
  const recovering = { up: false, passes: 1, fails: 0, failed: true };
  const cases: [CheckState | null, DockerHealth, Health][] = [
    [null, 'none', 'unchecked'],
    [null, 'healthy', 'passing'],
    [null, 'starting', 'starting'],
    [null, 'unhealthy', 'failing'],
    [INITIAL_CHECK, 'none', 'starting'],
    [rising, 'none', 'starting'],
    [recovering, 'none', 'failing'],
    [up, 'none', 'passing'],
    [down, 'none', 'failing'],
    [up, 'unhealthy', 'failing'],
    [up, 'starting', 'starting'],
    [down, 'healthy', 'failing'],
    [up, 'healthy', 'passing'],
  ];
  for (const [check, docker, want] of cases)
    assert.equal(combinedHealth(check, docker), want, `${JSON.stringify(check)} ${docker}`);
  assert.deepEqual(
    (['unchecked', 'starting', 'passing', 'failing'] as Health[]).filter(answersDns),
    ['unchecked', 'passing'],
  );
  assert.equal(dockerHealthOf({ State: { Health: { Status: 'unhealthy' } } }), 'unhealthy');
  assert.equal(dockerHealthOf({ State: {} }), 'none');
  assert.equal(dockerHealthOf({ State: { Health: { Status: 'bogus' } } }), 'none');
});
