/**
 * iptables rules, flannel's equivalent, each set in its own chain jumped to from a built-in one:
 * FLANNEL-POSTRTG (nat) masquerades overlay→outside and leaves overlay→overlay alone (--ip-masq);
 * FLANNEL-FWD (filter) accepts forwarded overlay traffic, which docker's FORWARD policy DROP
 * would otherwise block. `ensure` checks every rule (-C) and rebuilds the chain when one is
 * missing, so it is cheap to call periodically; `remove` deletes the jump and the chain.
 * Each is built for one family: iptables for IPv4, ip6tables for the IPv6 side of a dual-stack
 * network (as flannel's SetupAndEnsureIP6Tables).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Family } from './ip.js';

const run = promisify(execFile);

export interface ChainSpec {
  cmd: 'iptables' | 'ip6tables';
  table: 'nat' | 'filter';
  parent: string;
  chain: string;
  /** Rule arguments, in order, without `-A chain`. */
  rules: string[][];
}

const cmdOf = (f: Family) => (f.v === 4 ? 'iptables' : 'ip6tables');

/** `n` and `sn`: the network and our subnet, as CIDR text of family `f`. */
export function masqChain(f: Family, n: string, sn: string): ChainSpec {
  const c = ['-m', 'comment', '--comment', 'flanneld masq'];
  const multicast = f.v === 4 ? '224.0.0.0/4' : 'ff00::/8';
  return {
    cmd: cmdOf(f),
    table: 'nat',
    parent: 'POSTROUTING',
    chain: 'FLANNEL-POSTRTG',
    rules: [
      ['-m', 'mark', '--mark', '0x4000/0x4000', ...c, '-j', 'RETURN'],
      ['-s', n, '-d', n, ...c, '-j', 'RETURN'],
      ['!', '-s', n, '-d', sn, ...c, '-j', 'RETURN'],
      ['-s', n, '!', '-d', multicast, ...c, '-j', 'MASQUERADE', '--random-fully'],
      ['!', '-s', n, '-d', n, ...c, '-j', 'MASQUERADE', '--random-fully'],
    ],
  };
}

export function forwardChain(f: Family, n: string): ChainSpec {
  const c = ['-m', 'comment', '--comment', 'flanneld forward'];
  return {
    cmd: cmdOf(f),
    table: 'filter',
    parent: 'FORWARD',
    chain: 'FLANNEL-FWD',
    rules: [
      ['-s', n, ...c, '-j', 'ACCEPT'],
      ['-d', n, ...c, '-j', 'ACCEPT'],
    ],
  };
}

async function ipt(cmd: ChainSpec['cmd'], args: string[]): Promise<boolean> {
  try {
    await run(cmd, ['-w', '5', ...args]);
    return true;
  } catch {
    return false;
  }
}

/** Makes the chain exactly `spec`; returns true when something had to be (re)written. */
export async function ensureChain(spec: ChainSpec): Promise<boolean> {
  const t = ['-t', spec.table];
  const jump = ['-m', 'comment', '--comment', 'flanneld', '-j', spec.chain];
  let changed = false;
  let complete = await ipt(spec.cmd, [...t, '-S', spec.chain]);
  if (!complete) {
    if (!(await ipt(spec.cmd, [...t, '-N', spec.chain])))
      throw new Error(`${spec.cmd}: cannot create chain ${spec.chain} in table ${spec.table}`);
    changed = true;
  }
  for (const r of spec.rules) {
    if (!complete) break;
    complete = await ipt(spec.cmd, [...t, '-C', spec.chain, ...r]);
  }
  if (!complete) {
    await ipt(spec.cmd, [...t, '-F', spec.chain]);
    for (const r of spec.rules)
      if (!(await ipt(spec.cmd, [...t, '-A', spec.chain, ...r])))
        throw new Error(`${spec.cmd}: cannot add to ${spec.chain}: ${r.join(' ')}`);
    changed = true;
  }
  if (!(await ipt(spec.cmd, [...t, '-C', spec.parent, ...jump]))) {
    if (!(await ipt(spec.cmd, [...t, '-I', spec.parent, '1', ...jump])))
      throw new Error(`${spec.cmd}: cannot add jump from ${spec.parent} to ${spec.chain}`);
    changed = true;
  }
  return changed;
}

/** Removes the jump and the chain; absent ones are fine. */
export async function removeChain(spec: ChainSpec): Promise<void> {
  const t = ['-t', spec.table];
  // One check instead of three failing commands on every resync when it is already gone.
  if (!(await ipt(spec.cmd, [...t, '-S', spec.chain]))) return;
  while (
    await ipt(spec.cmd, [
      ...t,
      '-D',
      spec.parent,
      '-m',
      'comment',
      '--comment',
      'flanneld',
      '-j',
      spec.chain,
    ])
  );
  await ipt(spec.cmd, [...t, '-F', spec.chain]);
  await ipt(spec.cmd, [...t, '-X', spec.chain]);
}
