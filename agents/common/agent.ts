/**
 * The one way a Flotilla command starts and stops. `runCommand` parses flags (printing --help
 * or a one-line usage error, exit 2), calls `start` with the flags and a logger, and on
 * SIGTERM/SIGINT calls the stop function `start` returned, then exits 0. A start failure is
 * one line on stderr and exit 1. Each agent's main.ts is only a call to this.
 */
import { readFileSync } from 'node:fs';
import { ConfigError, UsageError, errorMessage } from './errors.js';
import { helpText, parseFlags, type FlagTable, type Flags } from './cli.js';
import { createLogger, type Logger } from './logger.js';

export interface CommandSpec<T extends FlagTable> {
  /** Command name as typed, e.g. "overlayd" or "logsd agent". */
  name: string;
  usage: string;
  description: string;
  flags: T;
  /** Starts the work; resolves to a stop function for long-running agents, or void for one-shot commands. */
  start(
    flags: Flags<T>,
    ctx: { log: Logger; positionals: string[] },
  ): Promise<(() => Promise<void>) | void | number>;
}

/** This package's version (package.json beside dist/), for every command's --version. */
export function packageVersion(): string {
  try {
    const pkg = JSON.parse(
      readFileSync(new URL('../../../package.json', import.meta.url), 'utf8'),
    ) as {
      version: string;
    };
    return pkg.version;
  } catch {
    return 'unknown';
  }
}

/** The oldest Node.js major the agents run on (package.json engines; the release bundles it). */
export const MIN_NODE_MAJOR = 24;

/**
 * Refuses to run on an older Node.js than we ship, with a line that says which one to use
 * (exit 1): an agent that runs as root on every host must not quietly run on an end-of-life one.
 */
export function requireSupportedNode(name: string): void {
  const major = Number(process.versions.node.split('.')[0]);
  if (major >= MIN_NODE_MAJOR) return;
  process.stderr.write(
    `${name}: needs Node.js ${MIN_NODE_MAJOR} or later, this is ${process.version} (${process.execPath}); ` +
      "run the release's bin/ wrappers (bundled runtime) or, in the repository, npm scripts / node_modules/.bin/node\n",
  );
  process.exit(1);
}

/** Exit codes: 0 ok, 1 runtime/config failure, 2 usage error. */
export async function runCommand<T extends FlagTable>(
  spec: CommandSpec<T>,
  argv = process.argv.slice(2),
): Promise<void> {
  requireSupportedNode(spec.name);
  let parsed;
  try {
    parsed = parseFlags(spec.flags, argv);
  } catch (err) {
    process.stderr.write(`${spec.name}: ${errorMessage(err)}\n`);
    process.exit(2);
  }
  if (parsed.help) {
    process.stdout.write(helpText(spec.name, spec.usage, spec.description, spec.flags));
    process.exit(0);
  }
  if (parsed.version) {
    process.stdout.write(`${spec.name} ${packageVersion()}\n`);
    process.exit(0);
  }
  const level = (parsed.flags as Record<string, unknown>)['logLevel'];
  const log = createLogger(
    spec.name.split(' ').join('-'),
    typeof level === 'string' ? level : 'info',
  );
  let stop: (() => Promise<void>) | void | number;
  try {
    stop = await spec.start(parsed.flags, { log, positionals: parsed.positionals });
  } catch (err) {
    process.stderr.write(`${spec.name}: ${errorMessage(err)}\n`);
    process.exit(err instanceof UsageError ? 2 : 1);
  }
  if (typeof stop === 'number') process.exit(stop);
  if (typeof stop !== 'function') process.exit(0);
  const stopFn = stop;
  let stopping = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal: sig }, 'stopping');
    const force = setTimeout(() => {
      log.error('stop took over 10 s; exiting');
      process.exit(1);
    }, 10_000);
    force.unref();
    stopFn().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err: errorMessage(err) }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

export { ConfigError, UsageError };
