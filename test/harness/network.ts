/**
 * The run's underlay: a hub namespace holding a bridge (`br0`, `<subnet>.1`), one namespace per
 * host joined to it by a veth (`eth0` inside the host, `<subnet>.(10+i)`), and a veth from the
 * root namespace (`<subnet>.254`) so the test process reaches hosts and etcd. Only a route for
 * the run's own /24 is added in the root namespace. Hosts and hub also get addresses in a random
 * IPv6 ULA /64 of the run (not reachable from the root namespace).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { must } from './proc.js';

export interface Underlay {
  subnet: string; // e.g. 10.231.17
  /** The run's own random IPv6 ULA /64, e.g. fd3a:91c2:7e05:1 (hub ::1, host i ::(10+i)). */
  subnet6: string;
  hubNs: string;
  hubIp: string;
  rootIp: string;
  rootLink: string;
}

/** Picks a 10.231.X.0/24 not routed in the root namespace and not taken by another live run. */
export function pickSubnet(taken: Set<string>): string {
  const routes = execFileSync('ip', ['-4', 'route', 'show', 'table', 'all'], { encoding: 'utf8' });
  for (let tries = 0; tries < 200; tries++) {
    const x = 1 + Math.floor(Math.random() * 250);
    const subnet = `10.231.${x}`;
    if (!taken.has(subnet) && !routes.includes(`${subnet}.`)) return subnet;
  }
  throw new Error('no free 10.231.X.0/24 for the underlay');
}

/** A random ULA /64 prefix (RFC 4193), new for every run, so no address is ever reused. */
export function pickSubnet6(): string {
  const b = randomBytes(5);
  // Canonical text (no leading zeros), as `ip` and the agents print it.
  return `fd${b.toString('hex', 0, 1)}:${b.readUInt16BE(1).toString(16)}:${b.readUInt16BE(3).toString(16)}:1`;
}

export async function createUnderlay(id: string, subnet: string): Promise<Underlay> {
  const subnet6 = pickSubnet6();
  const hubNs = `flt${id}-hub`;
  const rootLink = `flt${id}r`;
  await must(['ip', 'netns', 'add', hubNs]);
  await must(['ip', '-n', hubNs, 'link', 'set', 'lo', 'up']);
  await must(['ip', '-n', hubNs, 'link', 'add', 'br0', 'type', 'bridge']);
  await must(['ip', '-n', hubNs, 'addr', 'add', `${subnet}.1/24`, 'dev', 'br0']);
  await must(['ip', '-n', hubNs, 'addr', 'add', `${subnet6}::1/64`, 'dev', 'br0', 'nodad']);
  await must(['ip', '-n', hubNs, 'link', 'set', 'br0', 'up']);
  await must([
    'ip',
    'link',
    'add',
    rootLink,
    'type',
    'veth',
    'peer',
    'name',
    'root',
    'netns',
    hubNs,
  ]);
  await must(['ip', '-n', hubNs, 'link', 'set', 'root', 'master', 'br0', 'up']);
  await must(['ip', 'addr', 'add', `${subnet}.254/24`, 'dev', rootLink]);
  await must(['ip', 'link', 'set', rootLink, 'up']);
  return { subnet, subnet6, hubNs, hubIp: `${subnet}.1`, rootIp: `${subnet}.254`, rootLink };
}

/** Creates host namespace `flt<id>-h<i>` with `eth0` on the underlay; returns its name and IP. */
export function createHostNs(
  id: string,
  u: Underlay,
  index: number,
): Promise<{ name: string; ip: string; ip6: string }> {
  return createNs(
    u,
    `flt${id}-h${index}`,
    `h${index}`,
    `${u.subnet}.${10 + index}`,
    `${u.subnet6}::${10 + index}`,
  );
}

/** Namespace `flt<id>-e<i>` for etcd member i, `eth0` at `<subnet>.(100+i)`. */
export function createEtcdNs(
  id: string,
  u: Underlay,
  index: number,
): Promise<{ name: string; ip: string; ip6: string }> {
  return createNs(
    u,
    `flt${id}-e${index}`,
    `e${index}`,
    `${u.subnet}.${100 + index}`,
    `${u.subnet6}::${100 + index}`,
  );
}

/** A namespace with `eth0` at `ip` and `ip6`, joined to the hub bridge by veth `hubLink`. */
async function createNs(
  u: Underlay,
  name: string,
  hubLink: string,
  ip: string,
  ip6: string,
): Promise<{ name: string; ip: string; ip6: string }> {
  await must(['ip', 'netns', 'add', name]);
  await must(['ip', '-n', name, 'link', 'set', 'lo', 'up']);
  await must([
    'ip',
    '-n',
    u.hubNs,
    'link',
    'add',
    hubLink,
    'type',
    'veth',
    'peer',
    'name',
    'eth0',
    'netns',
    name,
  ]);
  await must(['ip', '-n', u.hubNs, 'link', 'set', hubLink, 'master', 'br0', 'up']);
  await must(['ip', '-n', name, 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
  await must(['ip', '-n', name, 'addr', 'add', `${ip6}/64`, 'dev', 'eth0', 'nodad']);
  await must(['ip', '-n', name, 'link', 'set', 'eth0', 'up']);
  return { name, ip, ip6 };
}
