// A minimal command built on the shared plumbing (flags, etcd, runCommand), used by cli tests
// to check exit codes and one-line errors end to end.
import { runCommand } from '../agent.js';
import { checkEtcdReachable, createEtcd, etcdFlags } from '../etcd.js';
import { logFlags } from '../logger.js';

await runCommand({
  name: 'etcd-ping',
  usage: '[flags]',
  description: 'Checks that etcd answers.',
  flags: {
    ...etcdFlags('FLOTILLA'),
    ...logFlags,
    timeout: { type: 'duration', help: 'how long to wait', default: '2s' },
  },
  async start(flags) {
    const client = createEtcd(flags);
    try {
      await checkEtcdReachable(client, flags.etcdEndpoints, flags.timeout);
      process.stdout.write('etcd ok\n');
      return 0;
    } finally {
      client.close();
    }
  },
});
