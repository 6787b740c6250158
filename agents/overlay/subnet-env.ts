/**
 * The files other programs read to learn this host's subnet: flannel's subnet.env (byte for
 * byte what flanneld writes, so CNI and docker units keep working) and the docker options that
 * flannel's mk-docker-opts.sh derives from it. Rendering and parsing are pure; writes are atomic
 * (temp file in the same directory, then rename), so readers never see half a file.
 */
import { mkdir, rename, writeFile, readFile, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import {
  IPv6,
  formatCidr,
  formatIPv4,
  formatPrefix,
  parseCidr,
  parsePrefix,
  type Cidr,
  type Prefix,
} from './ip.js';

export interface SubnetEnv {
  network: Cidr;
  subnet: Cidr;
  mtu: number;
  ipMasq: boolean;
  /** The IPv6 network and our IPv6 subnet, on a dual-stack network. */
  ipv6?: { network: Prefix; subnet: Prefix } | undefined;
}

/** Gateway address docker's bridge takes: the subnet's first host address, with the subnet's length. */
export function bridgeAddress(subnet: Cidr): string {
  return `${formatIPv4(subnet.ip + 1)}/${subnet.len}`;
}

/** flanneld's WriteSubnetFile: IPv4 lines, IPv6 lines when dual-stack, then MTU and IPMASQ. */
export function renderSubnetEnv(e: SubnetEnv): string {
  const v6 = e.ipv6
    ? `FLANNEL_IPV6_NETWORK=${formatPrefix(IPv6, e.ipv6.network)}\n` +
      `FLANNEL_IPV6_SUBNET=${formatPrefix(IPv6, { ip: e.ipv6.subnet.ip + 1n, len: e.ipv6.subnet.len })}\n`
    : '';
  return (
    `FLANNEL_NETWORK=${formatCidr(e.network)}\n` +
    `FLANNEL_SUBNET=${bridgeAddress(e.subnet)}\n` +
    v6 +
    `FLANNEL_MTU=${e.mtu}\n` +
    `FLANNEL_IPMASQ=${e.ipMasq}\n`
  );
}

/**
 * mk-docker-opts.sh output: docker must not masquerade when we do (flannel's convention), and
 * DOCKER_OPTS combines the three with a leading space, as the script does.
 */
export function renderDockerOpts(e: SubnetEnv): string {
  const opts: [string, string][] = [
    ['DOCKER_OPT_BIP', `--bip=${bridgeAddress(e.subnet)}`],
    ['DOCKER_OPT_IPMASQ', `--ip-masq=${!e.ipMasq}`],
    ['DOCKER_OPT_MTU', `--mtu=${e.mtu}`],
  ];
  const lines = opts.map(([k, v]) => `${k}="${v}"\n`).join('');
  return `${lines}DOCKER_OPTS="${opts.map(([, v]) => ` ${v}`).join('')}"\n`;
}

/** The subnet recorded in an existing subnet.env, if any (FLANNEL_SUBNET=10.5.7.1/24 → 10.5.7.0/24). */
export function parseSubnetEnvSubnet(text: string): Cidr | undefined {
  const m = /^FLANNEL_SUBNET=(\S+)$/m.exec(text);
  return m ? parseCidr(m[1]!) : undefined;
}

/** The IPv6 subnet recorded in an existing subnet.env (FLANNEL_IPV6_SUBNET=fd00:5:7::1/64 → fd00:5:7::/64). */
export function parseSubnetEnvSubnet6(text: string): Prefix | undefined {
  const m = /^FLANNEL_IPV6_SUBNET=(\S+)$/m.exec(text);
  return m ? parsePrefix(IPv6, m[1]!) : undefined;
}

export async function readPreviousSubnet(
  file: string,
): Promise<{ subnet: Cidr | undefined; subnet6: Prefix | undefined }> {
  try {
    const text = await readFile(file, 'utf8');
    return { subnet: parseSubnetEnvSubnet(text), subnet6: parseSubnetEnvSubnet6(text) };
  } catch {
    return { subnet: undefined, subnet6: undefined };
  }
}

/** Writes `content` to `file` atomically; creates the directory if needed. */
export async function writeFileAtomic(file: string, content: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  try {
    await writeFile(tmp, content, { mode: 0o644 });
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}
