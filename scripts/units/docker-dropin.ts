/**
 * The dockerd options of units/docker.service.d/50-flotilla.conf as data (pure), for a host's
 * subnet file values — so a local cluster starts dockerd exactly as the drop-in would, and the
 * drop-in cannot drift from what is tested. The drop-in runs `/bin/sh -c 'exec dockerd …'` (the
 * shell derives the bridge address from FLANNEL_SUBNET); this evaluates that one script line.
 */
import { commandFromUnit, parseUnit } from './unit-file.js';

export interface DropInDockerOptions {
  bip: string;
  mtu: number;
  dns: string[];
  /** --dns-search domains: dnsd's zone, so containers resolve short names. */
  dnsSearch: string[];
  logDriver: string;
  logOpts: Record<string, string>;
  /** Every other flag as written, e.g. `--ip-masq=false`, `--host=fd://`. */
  other: string[];
}

/** Subnet-file values: FLANNEL_SUBNET (e.g. 10.5.7.1/24) and FLANNEL_MTU. */
export function dockerOptionsFromDropIn(
  text: string,
  subnet: { FLANNEL_SUBNET: string; FLANNEL_MTU: string | number },
): DropInDockerOptions {
  const env = { FLANNEL_SUBNET: subnet.FLANNEL_SUBNET, FLANNEL_MTU: String(subnet.FLANNEL_MTU) };
  const argv = commandFromUnit(parseUnit(text), { name: 'docker.service', env });
  if (argv[0] !== '/bin/sh' || argv[1] !== '-c' || argv.length !== 3)
    throw new Error(`drop-in ExecStart is not /bin/sh -c '…': ${argv.join(' ')}`);
  const script = argv[2]!.replace(/\$\{FLANNEL_SUBNET%\/\*\}/g, env.FLANNEL_SUBNET.split('/')[0]!);
  const words = script.split(/\s+/).filter((w) => w !== '' && w !== '$DOCKER_OPTS');
  if (words[0] !== 'exec' || !words[1]?.endsWith('/dockerd'))
    throw new Error(`drop-in script does not exec dockerd: ${script}`);
  const out: DropInDockerOptions = {
    bip: '',
    mtu: 0,
    dns: [],
    dnsSearch: [],
    logDriver: '',
    logOpts: {},
    other: [],
  };
  const rest = words.slice(2);
  for (let i = 0; i < rest.length; i++) {
    const w = rest[i]!;
    if (w.includes('$')) throw new Error(`unexpanded shell text in the drop-in: ${w}`);
    const m = /^--([a-z-]+)=(.*)$/.exec(w);
    const [flag, value] = m ? [m[1]!, m[2]!] : [w.replace(/^--/, ''), rest[++i] ?? ''];
    switch (flag) {
      case 'bip':
        out.bip = value;
        break;
      case 'mtu':
        out.mtu = Number(value);
        break;
      case 'dns':
        out.dns.push(value);
        break;
      case 'dns-search':
        out.dnsSearch.push(value);
        break;
      case 'log-driver':
        out.logDriver = value;
        break;
      case 'log-opt': {
        const eq = value.indexOf('=');
        out.logOpts[value.slice(0, eq)] = value.slice(eq + 1);
        break;
      }
      default:
        out.other.push(m ? w : `${w}=${value}`);
    }
  }
  return out;
}
