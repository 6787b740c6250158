/**
 * Import first in an agent's main.ts: turns on Node's on-disk compile cache (NODE_COMPILE_CACHE,
 * else a directory in the OS temp dir), so the CommonJS dependencies loaded after it (gRPC,
 * protobufjs, pino, prom-client) are not compiled again on every start.
 */
import { enableCompileCache } from 'node:module';

enableCompileCache();
