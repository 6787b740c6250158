/**
 * The agents' own logs: pino, JSON lines on stderr (so stdout stays free for command output),
 * level from --log-level / LOG_LEVEL.
 */
import { pino, type Logger } from 'pino';
import type { FlagTable } from './cli.js';

export type { Logger };

export const logFlags = {
  'log-level': {
    type: 'string',
    value: 'LEVEL',
    help: 'log level: trace, debug, info, warn, error',
    default: 'info',
    env: ['LOG_LEVEL'],
  },
} satisfies FlagTable;

export function createLogger(name: string, level = 'info'): Logger {
  return pino({ name, level, base: { name } }, pino.destination({ fd: 2, sync: true }));
}
