/**
 * `logs`: read what the aggregator stored.
 *   logs tail --service nginx [-f] [-n 100] [--since 10m] [--grep RE] [--host H] [--json]
 *   logs services [--json]
 *   logs export --service nginx [--since 1h] -o nginx.tar
 * Human output is one line per record, `container@host | log`, oldest first, the prefix
 * coloured per container only when stdout is a terminal; --json prints the API's lines as-is.
 */
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { packageVersion, runCommand } from '../common/agent.js';
import { parseDuration, type FlagTable } from '../common/cli.js';
import { UsageError } from '../common/errors.js';
import type { LogLine } from './aggregator/query.js';
import { etcdFlags, type EtcdSettings } from '../common/etcd.js';
import { AGGREGATOR_KEY, discoverAggregator } from './discovery.js';
import { visible } from './terminal.js';

const serverFlag = {
  server: {
    type: 'string',
    value: 'URL',
    help: `aggregator query API; default: the address the aggregator announces in etcd at ${AGGREGATOR_KEY}, else http://127.0.0.1:24241`,
    env: ['FLOTILLA_LOGS_SERVER', 'LOGS_SERVER'],
  },
  token: {
    type: 'string',
    value: 'TOKEN',
    help: 'bearer token, when the aggregator runs with --http-token',
    env: ['FLOTILLA_LOGS_TOKEN'],
  },
  ...etcdFlags('FLOTILLA'),
} satisfies FlagTable;

const filterFlags = {
  service: { type: 'string', value: 'NAME', help: 'service to read (required)' },
  since: {
    type: 'string',
    value: 'WHEN',
    help: 'only records newer than a duration (10m, 1h) or an RFC 3339 time',
  },
  host: { type: 'string', value: 'HOST', help: 'only records from this host' },
  container: {
    type: 'string',
    value: 'NAME',
    help: 'only records from this container (name or id prefix)',
  },
  grep: { type: 'string', value: 'REGEX', help: 'only records whose log matches' },
} satisfies FlagTable;

const tailFlags = {
  ...filterFlags,
  follow: { type: 'bool', short: 'f', help: 'keep streaming new records' },
  lines: {
    type: 'int',
    short: 'n',
    value: 'N',
    help: 'last N records (0 = all; with -f, 0 = only new ones)',
    default: 100,
  },
  json: { type: 'bool', help: 'one JSON object per line (any bytes of a record stay valid JSON)' },
  raw: {
    type: 'bool',
    help: 'print records as they are, control characters included (default on a terminal: shown escaped)',
  },
  ...serverFlag,
} satisfies FlagTable;

const servicesFlags = {
  json: { type: 'bool', help: 'JSON output' },
  ...serverFlag,
} satisfies FlagTable;

const exportFlags = {
  ...filterFlags,
  output: { type: 'string', short: 'o', value: 'FILE', help: 'tar file to write (required)' },
  ...serverFlag,
} satisfies FlagTable;

const COLOURS = [31, 32, 33, 34, 35, 36, 91, 92, 93, 94, 95, 96];

/** A stable colour per container, so one container's lines are easy to follow. */
export function colourFor(key: string): number {
  let h = 0;
  for (const c of key) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return COLOURS[h % COLOURS.length]!;
}

/**
 * The human form of a record. On a terminal the container gets its colour and every control
 * character of the record (its text, container and host names) is shown escaped (`visible`), so a
 * container cannot act on the operator's terminal; `raw` prints the text as it is.
 */
export function formatLine(l: LogLine, tty: boolean, raw = false): string {
  const safe = tty && !raw ? visible : (s: string) => s;
  const who = safe(`${l.container || l.container_id.slice(0, 12)}@${l.host}`);
  const prefix = tty ? `\x1b[${colourFor(who)}m${who}\x1b[0m` : who;
  return `${prefix} | ${safe(l.log)}`;
}

function query(f: {
  service?: string;
  since?: string;
  host?: string;
  container?: string;
  grep?: string;
}): URLSearchParams {
  if (!f.service) throw new UsageError('--service: required (see `logs services`)');
  const q = new URLSearchParams({ service: f.service });
  if (f.since) q.set('since', checkSince(f.since));
  if (f.host) q.set('host', f.host);
  if (f.container) q.set('container', f.container);
  if (f.grep) {
    try {
      new RegExp(f.grep);
    } catch (err) {
      throw new UsageError(`--grep: ${(err as Error).message}`);
    }
    q.set('grep', f.grep);
  }
  return q;
}

/** --since as the aggregator reads it (a duration or an RFC 3339 time), checked before asking. */
function checkSince(v: string): string {
  if (/^\d+$/.test(v) || (/^\d{4}-/.test(v) && !Number.isNaN(Date.parse(v)))) return v;
  try {
    parseDuration(v);
  } catch {
    throw new UsageError(`--since: "${v}" is not a duration like 10m or an RFC 3339 time`);
  }
  return v;
}

/**
 * Why a query found nothing, when the reason is a name that does not exist: an unknown
 * --service, or a --host with no record of the service. Undefined when the names exist (the
 * other filters just matched nothing).
 */
async function unknownName(
  flags: Parameters<typeof get>[0],
  f: { service?: string | undefined; host?: string | undefined },
): Promise<string | undefined> {
  const body = (await (await get(flags, '/v1/services')).json()) as {
    services: { service: string }[];
  };
  const known = body.services.map((s) => s.service).sort();
  if (!known.includes(f.service!))
    return `no such service "${f.service}"; known: ${known.join(', ') || 'none yet'}`;
  if (!f.host) return undefined;
  const lines = async (q: Record<string, string>) =>
    (await (await get(flags, '/v1/logs', new URLSearchParams(q))).text())
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as LogLine);
  if ((await lines({ service: f.service!, host: f.host, limit: '1' })).length > 0) return undefined;
  const hosts = [
    ...new Set((await lines({ service: f.service!, limit: '1000' })).map((l) => l.host)),
  ];
  return `no record of service "${f.service}" from host "${f.host}"; its hosts: ${hosts.sort().join(', ')}`;
}

/** --server / FLOTILLA_LOGS_SERVER, else what the aggregator announced in etcd, else loopback. */
async function serverOf(f: { server?: string | undefined } & EtcdSettings): Promise<string> {
  if (f.server) return f.server;
  return (await discoverAggregator(f)) ?? 'http://127.0.0.1:24241';
}

async function get(
  flags: { server?: string | undefined; token?: string | undefined } & EtcdSettings,
  path: string,
  q?: URLSearchParams,
): Promise<Response> {
  const server = await serverOf(flags);
  let url: URL;
  try {
    url = new URL(path + (q ? `?${q.toString()}` : ''), server);
  } catch {
    throw new UsageError(`--server: "${server}" is not a URL like http://127.0.0.1:24241`);
  }
  let res: Response;
  try {
    res = await fetch(
      url,
      flags.token ? { headers: { authorization: `Bearer ${flags.token}` } } : {},
    );
  } catch (err) {
    throw new Error(
      `cannot reach the aggregator at ${server}: ${(err as { cause?: Error }).cause?.message ?? String(err)} (set --server or FLOTILLA_LOGS_SERVER)`,
    );
  }
  if (res.status !== 200) throw new Error(`aggregator at ${server}: ${(await res.text()).trim()}`);
  return res;
}

/**
 * Calls `each` for every NDJSON line of a (possibly endless) response body, and `chunkDone`
 * (awaited: backpressure) after each chunk of the body, before reading the next.
 */
async function eachLine(
  res: Response,
  each: (l: LogLine, raw: string) => void,
  chunkDone: () => Promise<void> = () => Promise.resolve(),
): Promise<void> {
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  let rest = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    const parts = (rest + dec.decode(value, { stream: true })).split('\n');
    rest = parts.pop() ?? '';
    for (const p of parts) if (p) each(JSON.parse(p) as LogLine, p);
    await chunkDone();
  }
  if (rest) each(JSON.parse(rest) as LogLine, rest);
}

function write(text: string): Promise<void> {
  return new Promise((resolve) => {
    if (process.stdout.write(text)) resolve();
    else process.stdout.once('drain', resolve);
  });
}

async function tail(argv: string[]): Promise<void> {
  await runCommand(
    {
      name: 'logs tail',
      usage: '--service NAME [-f] [-n N] [--since 10m] [--grep REGEX] [--host H] [--json]',
      description: 'Prints the records of a service, oldest first; -f keeps streaming new ones.',
      flags: tailFlags,
      async start(f) {
        if (f.lines < 0) throw new UsageError('-n/--lines: must be 0 or more');
        const q = query(f);
        // -n 0 is all of them, except with -f: only new ones, as `tail -n 0 -f`.
        if (f.lines > 0 || f.follow) q.set('limit', String(f.lines));
        if (f.follow) q.set('follow', '1');
        const tty = Boolean(process.stdout.isTTY);
        const res = await get(f, '/v1/logs', q);
        // Following a name that does not exist yet is allowed (its container may start later).
        if (f.follow)
          void unknownName(f, f).then(
            (why) => why && process.stderr.write(`logs tail: ${why}; waiting for new records\n`),
            () => undefined,
          );
        let count = 0;
        // One write per body chunk, awaited: stdout's backpressure reaches the socket (no
        // unbounded buffering, no pile of 'drain' listeners on a slow terminal or pipe).
        let buf = '';
        await eachLine(
          res,
          (l, raw) => {
            count++;
            buf += `${f.json ? raw : formatLine(l, tty, f.raw)}\n`;
          },
          async () => {
            const text = buf;
            buf = '';
            if (text) await write(text);
          },
        );
        await write(buf);
        if (count === 0) {
          const why = await unknownName(f, f);
          if (why) throw new Error(why);
        }
        return 0;
      },
    },
    argv,
  );
}

async function services(argv: string[]): Promise<void> {
  await runCommand(
    {
      name: 'logs services',
      usage: '[--json]',
      description:
        'Lists the services the aggregator holds logs for, with record counts and last-seen times.',
      flags: servicesFlags,
      async start(f) {
        const res = await get(f, '/v1/services');
        const body = (await res.json()) as {
          services: { service: string; count: number; bytes: number; lastSeen: number }[];
        };
        if (f.json) {
          await write(`${JSON.stringify(body.services)}\n`);
          return 0;
        }
        const rows = [
          ['SERVICE', 'RECORDS', 'SIZE', 'LAST SEEN'],
          ...body.services.map((s) => [
            s.service,
            String(s.count),
            `${(s.bytes / 1024 / 1024).toFixed(1)}MiB`,
            new Date(s.lastSeen).toISOString(),
          ]),
        ];
        const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
        await write(
          rows
            .map((r) =>
              r
                .map((c, i) => c.padEnd(widths[i]!))
                .join('  ')
                .trimEnd(),
            )
            .join('\n') + '\n',
        );
        return 0;
      },
    },
    argv,
  );
}

/** File name inside the export tar for one container. */
export function exportName(l: LogLine): string {
  const name = (l.container || 'unknown').replace(/[^A-Za-z0-9_.-]/g, '_');
  return `${name}-${l.container_id.slice(0, 12) || 'noid'}.log`;
}

async function exportTar(argv: string[]): Promise<void> {
  await runCommand(
    {
      name: 'logs export',
      usage: '--service NAME [--since 1h] -o FILE.tar',
      description:
        'Writes a tar with one file per container of the service: "<time> <stream> <log>" lines, oldest first.',
      flags: exportFlags,
      async start(f) {
        if (!f.output) throw new UsageError('-o/--output: required (the tar file to write)');
        const res = await get(f, '/v1/logs', query(f));
        const files = new Map<string, string[]>();
        await eachLine(res, (l) => {
          const name = exportName(l);
          let list = files.get(name);
          if (!list) files.set(name, (list = []));
          list.push(`${l.time} ${l.stream} ${l.log}\n`);
        });
        if (files.size === 0) {
          const why = await unknownName(f, f);
          if (why) throw new Error(why);
        }
        const pack = tar.pack();
        const done = pipeline(pack, createWriteStream(f.output));
        for (const [name, lines] of files) pack.entry({ name, mtime: new Date() }, lines.join(''));
        pack.finalize();
        await done;
        process.stderr.write(`wrote ${files.size} file(s) to ${f.output}\n`);
        return 0;
      },
    },
    argv,
  );
}

const TOP = `Usage: logs <tail|services|export> [flags]

Reads container logs from the Flotilla aggregator.
  tail       print a service's records (-f to follow)
  services   list services with record counts and last-seen times
  export     write a tar with one file per container

Run \`logs <command> --help\` for its flags; \`logs --version\` prints the version.
`;

export async function main(argv = process.argv.slice(2)): Promise<void> {
  // `logs tail -f | head`: the reader went away; that is a normal end.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'tail':
      return tail(rest);
    case 'services':
      return services(rest);
    case 'export':
      return exportTar(rest);
    case '--version':
      process.stdout.write(`logs ${packageVersion()}\n`);
      return;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(TOP);
      process.exit(sub === undefined ? 2 : 0);
      break;
    default:
      process.stderr.write(`logs: unknown command "${sub}" (tail, services or export)\n`);
      process.exit(2);
  }
}
