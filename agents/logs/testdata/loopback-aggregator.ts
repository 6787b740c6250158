/**
 * A real aggregator on loopback for unit tests: ephemeral forward and HTTP ports, its data in a
 * fresh temp dir, fsync off, silent log. `stop()` stops it and removes the dir.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../common/logger.js';
import { startAggregator, type AggregatorConfig } from '../aggregator/server.js';

export async function loopbackAggregator(prefix: string, extra: Partial<AggregatorConfig> = {}) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const agg = await startAggregator({
    listen: { host: '127.0.0.1', port: 0 },
    http: { host: '127.0.0.1', port: 0 },
    dataDir: join(dir, 'data'),
    fsync: 'never',
    hostname: 'agg',
    log: createLogger('test', 'silent'),
    ...extra,
  });
  return {
    agg,
    dir,
    async stop() {
      await agg.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
