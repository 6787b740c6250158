/**
 * iptables rules, flannel's equivalent, each set in its own chain jumped to from a built-in one:
 * FLANNEL-POSTRTG (nat) masquerades overlay→outside and leaves overlay→overlay alone (--ip-masq);
 * FLANNEL-FWD (filter) accepts forwarded overlay traffic, which docker's FORWARD policy DROP
 * would otherwise block. `ensure` checks every rule (-C) and rebuilds the chain when one is
 * missing, so it is cheap to call periodically; `remove` deletes the jump and the chain.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { formatCidr, type Cidr } from './ip.js';

const run = promisify(execFile);

export interface ChainSpec {
  table: 'nat' | 'filter';
  parent: string;
  chain: string;
  /** Rule arguments, in order, without `-A chain`. */
  rules: string[][];
}

export function masqChain(network: Cidr, subnet: Cidr): ChainSpec {
  const n = formatCidr(network);
  const sn = formatCidr(subnet);
  const c = ['-m', 'comment', '--comment', 'flanneld masq'];
  return {
    table: 'nat',
    parent: 'POSTROUTING',
    chain: 'FLANNEL-POSTRTG',
    rules: [
      ['-m', 'mark', '--mark', '0x4000/0x4000', ...c, '-j', 'RETURN'],
      ['-s', n, '-d', n, ...c, '-j', 'RETURN'],
      ['!', '-s', n, '-d', sn, ...c, '-j', 'RETURN'],
      ['-s', n, '!', '-d', '224.0.0.0/4', ...c, '-j', 'MASQUERADE', '--random-fully'],
      ['!', '-s', n, '-d', n, ...c, '-j', 'MASQUERADE', '--random-fully'],
    ],
  };
}

export function forwardChain(network: Cidr): ChainSpec {
  const n = formatCidr(network);
  const c = ['-m', 'comment', '--comment', 'flanneld forward'];
  return {
    table: 'filter',
    parent: 'FORWARD',
    chain: 'FLANNEL-FWD',
    rules: [
      ['-s', n, ...c, '-j', 'ACCEPT'],
      ['-d', n, ...c, '-j', 'ACCEPT'],
    ],
  };
}

async function ipt(args: string[]): Promise<boolean> {
  try {
    await run('iptables', ['-w', '5', ...args]);
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
  let complete = await ipt([...t, '-S', spec.chain]);
  if (!complete) {
    if (!(await ipt([...t, '-N', spec.chain])))
      throw new Error(`iptables: cannot create chain ${spec.chain} in table ${spec.table}`);
    changed = true;
  }
  for (const r of spec.rules) {
    if (!complete) break;
    complete = await ipt([...t, '-C', spec.chain, ...r]);
  }
  if (!complete) {
    await ipt([...t, '-F', spec.chain]);
    for (const r of spec.rules)
      if (!(await ipt([...t, '-A', spec.chain, ...r])))
        throw new Error(`iptables: cannot add to ${spec.chain}: ${r.join(' ')}`);
    changed = true;
  }
  if (!(await ipt([...t, '-C', spec.parent, ...jump]))) {
    if (!(await ipt([...t, '-I', spec.parent, '1', ...jump])))
      throw new Error(`iptables: cannot add jump from ${spec.parent} to ${spec.chain}`);
    changed = true;
  }
  return changed;
}

/** Removes the jump and the chain; absent ones are fine. */
export async function removeChain(spec: ChainSpec): Promise<void> {
  const t = ['-t', spec.table];
  // One check instead of three failing commands on every resync when it is already gone.
  if (!(await ipt([...t, '-S', spec.chain]))) return;
  while (
    await ipt([...t, '-D', spec.parent, '-m', 'comment', '--comment', 'flanneld', '-j', spec.chain])
  );
  await ipt([...t, '-F', spec.chain]);
  await ipt([...t, '-X', spec.chain]);
}
