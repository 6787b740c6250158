/**
 * CLI plumbing shared by every command: a declarative flag table gives parsing (long flags,
 * `--flag=value`, short aliases, repeatable lists), environment-variable fallbacks, value
 * validation, and the complete `--help` text with defaults. Unknown flags and bad values throw
 * `UsageError` with a one-line message naming the flag.
 */
import { UsageError } from './errors.js';

export type FlagType = 'string' | 'int' | 'bool' | 'duration' | 'list';

export interface FlagSpec {
  type: FlagType;
  /** One line for --help. */
  help: string;
  default?: string | number | boolean | string[];
  /** Environment variables read when the flag is not given, first match wins. */
  env?: string[];
  short?: string;
  /** Placeholder shown in --help, e.g. URLS. */
  value?: string;
}

export type FlagTable = Record<string, FlagSpec>;

type ValueOf<S extends FlagSpec> = S['type'] extends 'bool'
  ? boolean
  : S['type'] extends 'int' | 'duration'
    ? number
    : S['type'] extends 'list'
      ? string[]
      : string;

/** Parsed flags: keys are camelCase names of the flags; durations are milliseconds. */
export type Flags<T extends FlagTable> = { [K in keyof T as CamelCase<K & string>]: ValueOf<T[K]> };

type CamelCase<S extends string> = S extends `${infer A}-${infer B}`
  ? `${A}${Capitalize<CamelCase<B>>}`
  : S;

export function camelCase(name: string): string {
  return name.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses Go-style durations as flannel and etcd use them: `500ms`, `10s`, `1h30m`, `24h`. */
export function parseDuration(text: string): number {
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let total = 0;
  let end = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    total += Number(m[1]) * DURATION_UNITS[m[2]!]!;
    end = re.lastIndex;
  }
  if (end === 0 || end !== text.length)
    throw new Error(`"${text}" is not a duration like 500ms, 10s, 5m or 24h`);
  return total;
}

function convert(flag: string, spec: FlagSpec, raw: string): string | number | boolean {
  switch (spec.type) {
    case 'int': {
      if (!/^-?\d+$/.test(raw)) throw new UsageError(`--${flag}: "${raw}" is not a whole number`);
      return Number(raw);
    }
    case 'duration':
      try {
        return parseDuration(raw);
      } catch (err) {
        throw new UsageError(`--${flag}: ${(err as Error).message}`);
      }
    case 'bool':
      if (/^(1|true|yes|on)$/i.test(raw)) return true;
      if (/^(0|false|no|off)$/i.test(raw)) return false;
      throw new UsageError(`--${flag}: "${raw}" is not true or false`);
    default:
      return raw;
  }
}

export interface ParsedArgs<T extends FlagTable> {
  flags: Flags<T>;
  positionals: string[];
  help: boolean;
  version: boolean;
}

/**
 * Parses argv against the table. Order of precedence: command line, then the flag's env
 * variables, then its default. A list flag may be repeated and also accepts commas.
 * Arguments after `--` are positionals.
 */
export function parseFlags<T extends FlagTable>(
  table: T,
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
): ParsedArgs<T> {
  const given = new Map<string, (string | boolean)[]>();
  const positionals: string[] = [];
  const shorts = new Map<string, string>();
  for (const [name, spec] of Object.entries(table)) if (spec.short) shorts.set(spec.short, name);
  let help = false;
  let version = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg === '--help' || arg === '-h') {
      help = true;
      continue;
    }
    if (arg === '--version') {
      version = true;
      continue;
    }
    let name: string | undefined;
    let inline: string | undefined;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
      inline = eq === -1 ? undefined : arg.slice(eq + 1);
    } else if (/^-[A-Za-z0-9]$/.test(arg)) {
      name = shorts.get(arg.slice(1));
      if (!name) throw new UsageError(`unknown flag ${arg} (see --help)`);
    } else if (arg.startsWith('-') && arg.length > 1 && !/^-\d/.test(arg)) {
      throw new UsageError(`unknown flag ${arg} (see --help)`);
    } else {
      positionals.push(arg);
      continue;
    }
    let spec = table[name];
    // --no-FLAG for booleans, as Go's flag users expect `--ip-masq=false` and others `--no-x`.
    if (
      !spec &&
      name.startsWith('no-') &&
      table[name.slice(3)]?.type === 'bool' &&
      inline === undefined
    ) {
      name = name.slice(3);
      spec = table[name]!;
      inline = 'false';
    }
    if (!spec) throw new UsageError(`unknown flag --${name} (see --help)`);
    let value: string | boolean;
    if (spec.type === 'bool') {
      value = inline ?? true;
    } else if (inline !== undefined) {
      value = inline;
    } else {
      const next = argv[i + 1];
      if (next === undefined) throw new UsageError(`--${name} needs a value`);
      value = next;
      i++;
    }
    const list = given.get(name) ?? [];
    list.push(value);
    given.set(name, list);
  }
  const flags: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(table)) {
    let raws = given.get(name);
    if (!raws) {
      const envName = spec.env?.find((e) => env[e] !== undefined && env[e] !== '');
      if (envName) raws = [env[envName]!];
    }
    const key = camelCase(name);
    if (spec.type === 'list') {
      const items = raws
        ? raws
            .flatMap((r) => String(r).split(','))
            .map((s) => s.trim())
            .filter((s) => s !== '')
        : ((spec.default as string[] | undefined) ?? []);
      flags[key] = [...items];
    } else if (raws) {
      const last = raws[raws.length - 1]!;
      flags[key] = typeof last === 'boolean' ? last : convert(name, spec, last);
    } else if (spec.default !== undefined) {
      flags[key] =
        spec.type === 'duration' && typeof spec.default === 'string'
          ? parseDuration(spec.default)
          : spec.default;
    } else {
      flags[key] = spec.type === 'bool' ? false : undefined;
    }
  }
  return { flags: flags as Flags<T>, positionals, help, version };
}

/** The complete --help text: usage, description, then every flag with its default and env vars. */
export function helpText(
  command: string,
  usage: string,
  description: string,
  table: FlagTable,
): string {
  const rows: [string, string][] = [];
  for (const [name, spec] of Object.entries(table)) {
    const placeholder = spec.type === 'bool' ? '' : ` ${spec.value ?? spec.type.toUpperCase()}`;
    const left = `${spec.short ? `-${spec.short}, ` : '    '}--${name}${placeholder}`;
    let right = spec.help;
    const def = spec.default;
    if (
      def !== undefined &&
      !(Array.isArray(def) && def.length === 0) &&
      def !== false &&
      def !== ''
    )
      right += ` (default ${Array.isArray(def) ? def.join(',') : String(def)})`;
    if (spec.type === 'list') right += ' [repeatable]';
    if (spec.env?.length) right += ` [env ${spec.env.join(', ')}]`;
    rows.push([left, right]);
  }
  rows.push(
    ['-h, --help', 'show this help and exit'],
    ['    --version', 'print the version and exit'],
  );
  const width = Math.min(40, Math.max(...rows.map(([l]) => l.length)) + 2);
  const lines = rows.map(([l, r]) =>
    l.length + 2 > width ? `  ${l}\n  ${' '.repeat(width)}${r}` : `  ${l.padEnd(width)}${r}`,
  );
  return `Usage: ${command} ${usage}\n\n${description}\n\nFlags:\n${lines.join('\n')}\n`;
}
