/**
 * `npm run cluster -- env [HOST]`: shell exports that point an ordinary root shell at one host of
 * the local cluster. Everything they name is reachable from the root namespace (its veth on the
 * underlay): DOCKER_HOST is the host's dockerd socket, ETCDCTL_* and LOGS_SERVER are the cluster's
 * etcd and log aggregator on the underlay, and PATH gains the project's commands (dist/bin).
 * etcd runs with client certificates: the shell gets the operator's (etcd user root) under every
 * name the tools read: etcdctl ETCDCTL_CACERT/CERT/KEY, announce/dnsctl/dnsd SKYDNS_ETCD_*FILE,
 * logs/logsd FLOTILLA_ETCD_*FILE, overlayd FLANNELD_ETCD_*FILE.
 * The agents themselves run inside the hosts; a command that must run in a host's network
 * namespace goes through `npm run cluster -- exec HOST -- CMD`, which keeps this environment.
 */
import { join } from 'node:path';
import { shQuote } from './dev-bin.js';

export interface EnvHost {
  name: string;
  ip: string;
  dockerSocket?: string | undefined;
}

/** The host a user means by "2", "h2" or "fltdemo-h2"; undefined when none matches. */
export function findHost<H extends { name: string }>(hosts: H[], arg: string): H | undefined {
  return hosts.find((h, i) => arg === String(i + 1) || arg === `h${i + 1}` || arg === h.name);
}

/** The operator's certificate (etcd user root) in a secure etcd's `pki`; undefined if plain. */
export function operatorEtcdTls(
  pki: string | undefined,
): { caFile: string; certFile: string; keyFile: string } | undefined {
  if (!pki) return undefined;
  return {
    caFile: join(pki, 'ca.pem'),
    certFile: join(pki, 'root.pem'),
    keyFile: join(pki, 'root-key.pem'),
  };
}

/** The exports for `eval`, one per line, with a comment saying what they do. */
export function envScript(o: {
  host: EnvHost;
  index: number;
  etcdEndpoints: string[];
  logsServer: string;
  /** The query token npm start made (the aggregator runs locked). */
  logsTokenFile?: string;
  /** The operator's etcd client certificate (etcd with TLS and roles). */
  etcdTls?: { caFile: string; certFile: string; keyFile: string } | undefined;
  binDir: string;
}): string {
  const lines = [
    `# Flotilla local cluster: docker talks to host ${o.index} (${o.host.name}); logs, announce, etcdctl reach the cluster.`,
    `# Agents run inside a host: npm run cluster -- exec ${o.index} -- dnsd --help`,
  ];
  if (o.host.dockerSocket)
    lines.push(`export DOCKER_HOST=${shQuote(`unix://${o.host.dockerSocket}`)}`);
  lines.push(
    'export ETCDCTL_API=3',
    `export ETCDCTL_ENDPOINTS=${shQuote(o.etcdEndpoints.join(','))}`,
    // The logs CLI reads FLOTILLA_LOGS_SERVER first: set both, so an older value cannot win.
    `export LOGS_SERVER=${shQuote(o.logsServer)} FLOTILLA_LOGS_SERVER=${shQuote(o.logsServer)}`,
    ...(o.logsTokenFile ? [`export FLOTILLA_LOGS_TOKEN_FILE=${shQuote(o.logsTokenFile)}`] : []),
    ...(o.etcdTls ? etcdTlsExports(o.etcdTls) : []),
    // Idempotent: eval it twice and PATH still has dist/bin once.
    `case ":$PATH:" in *:${shQuote(o.binDir)}:*) ;; *) export PATH=${shQuote(o.binDir)}:"$PATH" ;; esac`,
  );
  return `${lines.join('\n')}\n`;
}

function etcdTlsExports(t: { caFile: string; certFile: string; keyFile: string }): string[] {
  const [ca, cert, key] = [t.caFile, t.certFile, t.keyFile].map(shQuote);
  return [
    `export ETCDCTL_CACERT=${ca} ETCDCTL_CERT=${cert} ETCDCTL_KEY=${key}`,
    ...['SKYDNS', 'FLOTILLA', 'FLANNELD'].map(
      (p) => `export ${p}_ETCD_CAFILE=${ca} ${p}_ETCD_CERTFILE=${cert} ${p}_ETCD_KEYFILE=${key}`,
    ),
  ];
}

/** The line `npm start` and `status` print. */
export function evalHint(index = 1): string {
  return `eval "$(npm run -s cluster -- env ${index})"`;
}
