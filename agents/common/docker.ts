/**
 * Docker API access shared by the commands that read container metadata (announce, dnsd
 * --docker, logsd agent): one flag, `--docker-host`, with Docker's own `DOCKER_HOST` env var
 * and its `unix://` form, so every command finds the same dockerd the docker CLI would.
 */
import { createRequire } from 'node:module';
import type Docker from 'dockerode';
import type { FlagTable } from './cli.js';
import { UsageError } from './errors.js';

export function dockerFlags(help = 'Docker API endpoint') {
  return {
    'docker-host': {
      type: 'string',
      value: 'URL',
      help: `${help}: unix:///path/to/docker.sock or a socket path`,
      default: 'unix:///var/run/docker.sock',
      env: ['DOCKER_HOST'],
    },
  } satisfies FlagTable;
}

/** The socket path of a `--docker-host` value; throws UsageError for non-unix endpoints. */
export function dockerSocketPath(value: string): string {
  if (value.startsWith('unix://')) return value.slice('unix://'.length);
  if (value.startsWith('/')) return value;
  throw new UsageError(
    `--docker-host: "${value}" is not unix:///path/to/docker.sock (only unix sockets are supported)`,
  );
}

/** A client for `--docker-host`. dockerode is loaded here, not at import: it takes about a second. */
export function dockerClient(value: string): Docker {
  const D = createRequire(import.meta.url)('dockerode') as typeof Docker;
  return new D({ socketPath: dockerSocketPath(value) });
}
