/**
 * The files other programs read to learn this host's subnet: flannel's subnet.env (byte for
 * byte what flanneld writes, so CNI and docker units keep working) and the docker options that
 * flannel's mk-docker-opts.sh derives from it. Rendering and parsing are pure; writes are atomic
 * (temp file in the same directory, then rename), so readers never see half a file.
 */
import { mkdir, rename, writeFile, readFile, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { formatCidr, formatIPv4, parseCidr, type Cidr } from './ip.js';

export interface SubnetEnv {
  network: Cidr;
  subnet: Cidr;
  mtu: number;
  ipMasq: boolean;
}

/** Gateway address docker's bridge takes: the subnet's first host address, with the subnet's length. */
export function bridgeAddress(subnet: Cidr): string {
  return `${formatIPv4(subnet.ip + 1)}/${subnet.len}`;
}

export function renderSubnetEnv(e: SubnetEnv): string {
  return (
    `FLANNEL_NETWORK=${formatCidr(e.network)}\n` +
    `FLANNEL_SUBNET=${bridgeAddress(e.subnet)}\n` +
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

export async function readPreviousSubnet(file: string): Promise<Cidr | undefined> {
  try {
    return parseSubnetEnvSubnet(await readFile(file, 'utf8'));
  } catch {
    return undefined;
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
