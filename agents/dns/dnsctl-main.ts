#!/usr/bin/env node
/**
 * `dnsctl`: what runs where, and blue/green switches, from the records in etcd. One flag table
 * for every subcommand, so the etcd flags go before or after it:
 * `dnsctl --etcd-endpoints URL ls web.skydns.local` = `dnsctl ls web.skydns.local --etcd-endpoints URL`.
 * Exit codes: 0 ok, 1 etcd/record problem (or unalias of a name without alias), 2 usage.
 */
import { runCommand } from '../common/agent.js';
import type { FlagTable } from '../common/cli.js';
import { ConfigError, UsageError, errorMessage } from '../common/errors.js';
import { checkEtcdReachable, createEtcd, etcdFlags } from '../common/etcd.js';
import { logFlags } from '../common/logger.js';
import { listInstances, removeAlias, setAlias } from './dnsctl.js';
import { formatTable } from './instances.js';
import { fqdn } from './records.js';

const flags = {
  prefix: { type: 'string', value: 'PATH', help: 'etcd prefix of the records', default: '/skydns' },
  ...etcdFlags('SKYDNS'),
  json: { type: 'bool', help: 'ls: a JSON array instead of the table' },
  ttl: { type: 'int', help: 'alias: TTL of the alias record in seconds', default: 10 },
  ...logFlags,
} satisfies FlagTable;

await runCommand({
  name: 'dnsctl',
  usage: '<ls [NAME] | alias NAME TARGET | unalias NAME> [flags]',
  description:
    'Shows and steers the cluster DNS records in etcd.\n' +
    '  ls [NAME]            instances at or below NAME (default: every one), with address:port,\n' +
    '                       host, version, health and TTL left; --json for scripts\n' +
    '  alias NAME TARGET    NAME answers what TARGET answers (CNAME-style record, no restart)\n' +
    '  unalias NAME         removes that alias\n' +
    'Flags go before or after the command.',
  flags,
  async start(f, { positionals }) {
    const [cmd, ...args] = positionals;
    const want = (n: number, usage: string) => {
      if (args.length !== n) throw new UsageError(`usage: dnsctl ${usage}`);
    };
    switch (cmd) {
      case 'ls':
        if (args.length > 1) throw new UsageError('usage: dnsctl ls [NAME]');
        break;
      case 'alias':
        want(2, 'alias NAME TARGET');
        if (f.ttl < 1) throw new UsageError(`--ttl: must be at least 1 second, got ${f.ttl}`);
        break;
      case 'unalias':
        want(1, 'unalias NAME');
        break;
      case undefined:
        throw new UsageError('give a command: ls, alias or unalias (see --help)');
      default:
        throw new UsageError(`unknown command "${cmd}" (ls, alias or unalias)`);
    }
    const client = createEtcd(f);
    try {
      await checkEtcdReachable(client, f.etcdEndpoints, 5000);
      if (cmd === 'ls') {
        const { rows, bad } = await listInstances(client, f.prefix, args[0]);
        for (const b of bad) process.stderr.write(`dnsctl: skipped ${b}\n`);
        process.stdout.write(
          f.json ? `${JSON.stringify(rows, null, 2)}\n` : rows.length ? formatTable(rows) : '',
        );
        return 0;
      }
      if (cmd === 'alias') {
        const key = await setAlias(client, f.prefix, args[0]!, args[1]!, f.ttl);
        process.stdout.write(
          `${fqdn(args[0]!)} → ${fqdn(args[1]!)} (${key}); clients holding the old answer ` +
            `see it when that answer's TTL runs out\n`,
        );
        return 0;
      }
      if (!(await removeAlias(client, f.prefix, args[0]!))) {
        process.stderr.write(`dnsctl: ${fqdn(args[0]!)} has no alias\n`);
        return 1;
      }
      process.stdout.write(`${fqdn(args[0]!)}: alias removed\n`);
      return 0;
    } catch (err) {
      if (err instanceof UsageError || err instanceof ConfigError) throw err;
      throw new ConfigError(`etcd at ${f.etcdEndpoints.join(',')}: ${errorMessage(err)}`);
    } finally {
      client.close();
    }
  },
});
