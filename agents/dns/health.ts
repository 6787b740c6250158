/**
 * Health checks, pure: what a check probes (parsed from `announce --check-*` flags or
 * registrator's SERVICE_CHECK_* values), the rise/fall state machine that turns probe results
 * into up/down, and how that combines with a container's Docker HEALTHCHECK status into the
 * health an instance shows (`dnsctl ls`) and whether its record is in DNS. The probes
 * themselves (HTTP, TCP, command) live in probes.ts; the loop that runs them in checker.ts.
 */
import { isIP } from 'node:net';

export type CheckTarget =
  | { kind: 'http'; url: string }
  | { kind: 'tcp'; host: string; port: number }
  | { kind: 'cmd'; command: string };

export interface CheckSpec {
  target: CheckTarget;
  intervalMs: number;
  timeoutMs: number;
  /** Consecutive passes that bring a down instance up. */
  rise: number;
  /** Consecutive failures that take an up instance down. */
  fall: number;
}

export class CheckSpecError extends Error {
  override name = 'CheckSpecError';
}

function hostForUrl(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host.replace(/\.$/, '');
}

/**
 * `--check-http` / SERVICE_CHECK_HTTP: a full http(s) URL, or a PATH ("/health") taken relative
 * to the announced host and port (port 80 when the instance has none).
 */
export function httpTarget(value: string, host: string, port: number): CheckTarget {
  const v = value.trim();
  if (v.startsWith('/')) {
    if (!host)
      throw new CheckSpecError(`"${v}" is a path, but the instance has no host to check it on`);
    return { kind: 'http', url: `http://${hostForUrl(host)}:${port || 80}${v}` };
  }
  if (/^https?:\/\//i.test(v)) {
    try {
      return { kind: 'http', url: new URL(v).toString() };
    } catch {
      /* falls through to the error below */
    }
  }
  throw new CheckSpecError(
    `"${value}" is neither a URL like http://10.5.7.2:80/health nor a path like /health`,
  );
}

/**
 * `--check-tcp` / SERVICE_CHECK_TCP: HOST:PORT, [IPv6]:PORT, a bare PORT on the announced host,
 * or `true` (registrator's form) for the announced host and port.
 */
export function tcpTarget(value: string, host: string, port: number): CheckTarget {
  const v = value.trim();
  const onHost = (p: number): CheckTarget => {
    if (!host)
      throw new CheckSpecError(`"${v}" needs the instance's host, but it has none to check`);
    if (!(p > 0 && p < 65536))
      throw new CheckSpecError(`"${v}": the instance has no port to check; give HOST:PORT`);
    return { kind: 'tcp', host, port: p };
  };
  if (/^(true|yes)$/i.test(v)) return onHost(port);
  if (/^\d+$/.test(v)) {
    const p = Number(v);
    if (p < 1 || p > 65535) throw new CheckSpecError(`"${v}" is not a port 1..65535`);
    return onHost(p);
  }
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d+)$/.exec(v);
  const p = Number(m?.[3]);
  if (!m || p < 1 || p > 65535)
    throw new CheckSpecError(`"${value}" is not HOST:PORT, PORT or true`);
  return { kind: 'tcp', host: m[1] ?? m[2]!, port: p };
}

export function cmdTarget(value: string): CheckTarget {
  if (value.trim() === '') throw new CheckSpecError('the command is empty');
  return { kind: 'cmd', command: value };
}

/** What the timing fields are called where they came from (flags, SERVICE_CHECK_* names). */
export interface TimingNames {
  interval: string;
  timeout: string;
  rise: string;
  fall: string;
}

const PLAIN: TimingNames = { interval: 'interval', timeout: 'timeout', rise: 'rise', fall: 'fall' };

/** Checks the timing fields; throws CheckSpecError naming the bad one as `names` calls it. */
export function checkTiming(
  t: Omit<CheckSpec, 'target'>,
  names: TimingNames = PLAIN,
): Omit<CheckSpec, 'target'> {
  if (!(t.intervalMs > 0))
    throw new CheckSpecError(`${names.interval}: must be above 0, got ${t.intervalMs} ms`);
  if (!(t.timeoutMs > 0))
    throw new CheckSpecError(`${names.timeout}: must be above 0, got ${t.timeoutMs} ms`);
  if (t.timeoutMs > t.intervalMs)
    throw new CheckSpecError(
      `${names.timeout}: ${t.timeoutMs} ms must not exceed ${names.interval} (${t.intervalMs} ms)`,
    );
  if (!(Number.isInteger(t.rise) && t.rise >= 1))
    throw new CheckSpecError(`${names.rise}: must be a whole number of at least 1, got ${t.rise}`);
  if (!(Number.isInteger(t.fall) && t.fall >= 1))
    throw new CheckSpecError(`${names.fall}: must be a whole number of at least 1, got ${t.fall}`);
  return t;
}

/** Where a check stands. An instance starts down and needs `rise` passes to come up. */
export interface CheckState {
  up: boolean;
  /** Consecutive passes / failures up to now. */
  passes: number;
  fails: number;
  /** A check failed since the instance was last up (down = failing, not merely starting). */
  failed: boolean;
}

export const INITIAL_CHECK: CheckState = { up: false, passes: 0, fails: 0, failed: false };

/** HAProxy's rise/fall: `rise` passes in a row bring it up, `fall` failures in a row take it down. */
export function nextCheck(s: CheckState, ok: boolean, rise: number, fall: number): CheckState {
  if (ok) {
    const passes = s.passes + 1;
    const up = s.up || passes >= rise;
    return { up, passes, fails: 0, failed: up ? false : s.failed };
  }
  const fails = s.fails + 1;
  return { up: s.up && fails < fall, passes: 0, fails, failed: true };
}

/** A container's Docker HEALTHCHECK status; `none` when the image defines no HEALTHCHECK. */
export type DockerHealth = 'none' | 'starting' | 'healthy' | 'unhealthy';

export function dockerHealthOf(info: { State?: { Health?: { Status?: string } } }): DockerHealth {
  const s = info.State?.Health?.Status;
  return s === 'starting' || s === 'healthy' || s === 'unhealthy' ? s : 'none';
}

/**
 * What `dnsctl ls` shows: `unchecked` (no check, no HEALTHCHECK), `starting` (not up yet, no
 * failure yet), `passing`, `failing` (down after a failure, also while rising again).
 */
export type Health = 'unchecked' | 'starting' | 'passing' | 'failing';

/**
 * Health of an instance from its own check (null when it has none) and its container's Docker
 * health. Docker `unhealthy` is failing whatever the check says; Docker `starting` holds the
 * instance back until the container is healthy, as Swarm does.
 */
export function combinedHealth(check: CheckState | null, docker: DockerHealth): Health {
  if (docker === 'unhealthy') return 'failing';
  if (check && !check.up) return check.failed ? 'failing' : 'starting';
  if (docker === 'starting') return 'starting';
  return check || docker === 'healthy' ? 'passing' : 'unchecked';
}

/** Whether an instance of this health is in DNS answers. */
export function answersDns(h: Health): boolean {
  return h === 'passing' || h === 'unchecked';
}
