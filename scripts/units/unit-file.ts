/**
 * systemd unit files as data (pure): parsing (sections, `Key=Value`, comments, backslash
 * continuation lines), unit names (templates, instances), specifier expansion, and turning an
 * `ExecStart=` line into the argv systemd would run — so scripts can run exactly the command a
 * unit file holds (the local cluster does) and linters can reason about the same structure.
 */

export interface UnitEntry {
  key: string;
  /** Value with continuation lines joined by a space, leading/trailing whitespace trimmed. */
  value: string;
  /** 1-based line of the key. */
  line: number;
}

export interface UnitSection {
  name: string;
  line: number;
  entries: UnitEntry[];
}

export interface UnitFile {
  sections: UnitSection[];
}

/** A syntax error systemd would also report; `line` is 1-based. */
export class UnitSyntaxError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(`line ${line}: ${message}`);
    this.name = 'UnitSyntaxError';
  }
}

const isComment = (s: string) => s.startsWith('#') || s.startsWith(';');

/**
 * Parses unit-file syntax as systemd does: `#`/`;` comment lines, `[Section]` headers, `Key=Value`
 * with whitespace around `=` ignored, and a trailing backslash joining the next line with a space
 * (comment lines inside a continuation are skipped). Throws UnitSyntaxError for an entry outside
 * any section, a line without `=`, or a malformed header.
 */
export function parseUnit(text: string): UnitFile {
  const lines = text.split('\n').map((l) => l.replace(/\r$/, ''));
  const sections: UnitSection[] = [];
  let current: UnitSection | undefined;
  for (let i = 0; i < lines.length; i++) {
    const start = i + 1;
    let line = lines[i]!.trim();
    if (line === '' || isComment(line)) continue;
    if (line.startsWith('[')) {
      if (!/^\[[^[\]]+\]$/.test(line))
        throw new UnitSyntaxError(start, `malformed section header ${JSON.stringify(line)}`);
      current = { name: line.slice(1, -1), line: start, entries: [] };
      sections.push(current);
      continue;
    }
    while (line.endsWith('\\')) {
      line = line.slice(0, -1);
      let next: string | undefined;
      while (i + 1 < lines.length) {
        next = lines[++i]!.trim();
        if (!isComment(next)) break;
        next = undefined;
      }
      if (next === undefined) break;
      line = `${line} ${next}`;
    }
    if (!current) throw new UnitSyntaxError(start, `"${line}" is outside any [Section]`);
    const eq = line.indexOf('=');
    if (eq <= 0) throw new UnitSyntaxError(start, `"${line}" is not Key=Value`);
    current.entries.push({
      key: line.slice(0, eq).trim(),
      value: line.slice(eq + 1).trim(),
      line: start,
    });
  }
  return { sections };
}

/** Every entry for `key` in every section named `section`, in file order. */
export function entries(unit: UnitFile, section: string, key: string): UnitEntry[] {
  return unit.sections
    .filter((s) => s.name === section)
    .flatMap((s) => s.entries.filter((e) => e.key === key));
}

/**
 * The effective values of a list-valued setting (ExecStart, Environment, After, …): as in systemd,
 * an empty assignment clears what came before.
 */
export function listValues(unit: UnitFile, section: string, key: string): string[] {
  const out: string[] = [];
  for (const e of entries(unit, section, key)) {
    if (e.value === '') out.length = 0;
    else out.push(e.value);
  }
  return out;
}

export interface UnitName {
  /** Part before `@` (or before the type suffix when there is no `@`). */
  prefix: string;
  /** Instance string for `p@i.type`; '' for a template `p@.type`; undefined without `@`. */
  instance: string | undefined;
  /** Suffix without the dot: service, socket, target, … */
  type: string;
}

export function parseUnitName(name: string): UnitName {
  const m = /^([^@/]+?)(?:@([^/]*))?\.([a-z]+)$/.exec(name);
  if (!m) throw new Error(`"${name}" is not a unit name like foo.service or foo@bar.service`);
  return { prefix: m[1]!, instance: m[2], type: m[3]! };
}

export const isTemplate = (name: string) => parseUnitName(name).instance === '';

/** `nginx@1.service` → `nginx@.service`; undefined when `name` is not an instance. */
export function templateOf(name: string): string | undefined {
  const n = parseUnitName(name);
  return n.instance ? `${n.prefix}@.${n.type}` : undefined;
}

/** `nginx@.service` + `1` → `nginx@1.service`. */
export function instanceOf(template: string, instance: string): string {
  const n = parseUnitName(template);
  return `${n.prefix}@${instance}.${n.type}`;
}

/** The `%X` specifiers used in `value` (`%%` is a literal percent sign, not a specifier). */
export function specifiersIn(value: string): string[] {
  const out: string[] = [];
  for (const m of value.matchAll(/%(.?)/g)) if (m[1] !== '%') out.push(`%${m[1] ?? ''}`);
  return out;
}

/**
 * Expands specifiers as systemd does for unit `name`: %n %N %p %i %I %j (from the name) and any
 * others given in `extra` (e.g. `{H: 'core-01'}`). An unknown specifier throws, so a caller never
 * runs a command holding a literal `%x`.
 */
export function expandSpecifiers(
  value: string,
  name: string,
  extra: Record<string, string> = {},
): string {
  const n = parseUnitName(name);
  const instance = n.instance ?? '';
  const fromName: Record<string, string> = {
    n: name,
    N: name.slice(0, -(n.type.length + 1)),
    p: n.prefix,
    P: n.prefix,
    i: instance,
    I: instance,
    j: n.prefix.split('-').at(-1) ?? n.prefix,
    '%': '%',
  };
  return value.replace(/%(.?)/g, (_, c: string) => {
    const v = fromName[c] ?? extra[c];
    if (v === undefined) throw new Error(`${name}: specifier %${c} has no value here`);
    return v;
  });
}

export interface ExecLine {
  /** Words after quote removal, before variable expansion. */
  words: string[];
  /** `-` prefix: a failure exit code is ignored. */
  ignoreFailure: boolean;
  /** Other prefixes as written (`@`, `+`, `!`, `!!`, `:`). */
  prefixes: string;
}

const ESCAPES: Record<string, string> = { n: '\n', t: '\t', s: ' ', '\\': '\\', '"': '"', "'": "'" };

/**
 * Splits an Exec*= value into words the way systemd does: whitespace separates, "double" and
 * 'single' quotes group (a quote opens only at the start of a word), backslash escapes
 * (\\ \" \' \n \t \s). Leading prefixes `-@:+!` are returned apart.
 */
export function splitExec(value: string): ExecLine {
  const pm = /^[-@:+!]*/.exec(value)!;
  const prefixes = pm[0];
  const rest = value.slice(prefixes.length);
  const words: string[] = [];
  let i = 0;
  while (i < rest.length) {
    while (i < rest.length && /\s/.test(rest[i]!)) i++;
    if (i >= rest.length) break;
    let word = '';
    let quote: string | undefined;
    if (rest[i] === '"' || rest[i] === "'") quote = rest[i++];
    for (; i < rest.length; i++) {
      const c = rest[i]!;
      if (c === '\\') {
        const e = rest[++i];
        if (e === undefined) throw new Error(`trailing backslash in ${JSON.stringify(value)}`);
        const r = ESCAPES[e];
        if (r === undefined)
          throw new Error(`unknown escape \\${e} in ${JSON.stringify(value)}`);
        word += r;
      } else if (quote !== undefined && c === quote) {
        i++;
        if (i < rest.length && !/\s/.test(rest[i]!))
          throw new Error(`text right after a closing quote in ${JSON.stringify(value)}`);
        quote = undefined;
        break;
      } else if (quote === undefined && /\s/.test(c)) break;
      else word += c;
    }
    if (quote !== undefined) throw new Error(`unterminated ${quote} in ${JSON.stringify(value)}`);
    words.push(word);
  }
  return { words, ignoreFailure: prefixes.includes('-'), prefixes: prefixes.replace(/-/g, '') };
}

/**
 * systemd's variable expansion of Exec words: a word that is exactly `$NAME` becomes the value split
 * at whitespace (zero words when empty or unset); `${NAME}` anywhere in a word is replaced by the
 * value as is (empty when unset); `$$` is a literal `$`. Anything else stays as written.
 */
export function expandExecWords(words: string[], env: Record<string, string>): string[] {
  const out: string[] = [];
  for (const w of words) {
    const whole = /^\$([A-Za-z_][A-Za-z0-9_]*)$/.exec(w);
    if (whole) {
      out.push(...(env[whole[1]!] ?? '').split(/\s+/).filter((s) => s !== ''));
      continue;
    }
    out.push(
      w.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (m, name: string | undefined) =>
        name === undefined ? '$' : (env[name] ?? ''),
      ),
    );
  }
  return out;
}

/** `Environment=` assignments of a section, later ones winning, as systemd applies them. */
export function environmentOf(unit: UnitFile, section = 'Service'): Record<string, string> {
  const env: Record<string, string> = {};
  for (const value of listValues(unit, section, 'Environment')) {
    for (const word of splitExec(value).words) {
      const eq = word.indexOf('=');
      if (eq <= 0) throw new Error(`Environment=${value}: "${word}" is not NAME=VALUE`);
      env[word.slice(0, eq)] = word.slice(eq + 1);
    }
  }
  return env;
}

export interface CommandOptions {
  /** Unit name the file is loaded as, e.g. `nginx@1.service` (specifiers come from it). */
  name: string;
  /** What the unit's EnvironmentFile= files would hold; overrides its Environment= defaults. */
  env?: Record<string, string>;
  /** Values for specifiers beyond the name-derived ones, e.g. `{H: 'host1'}`. */
  specifiers?: Record<string, string>;
  /** Exec setting to read; default ExecStart. */
  key?: string;
}

/**
 * The argv systemd would run for a unit's (single) `ExecStart=` — or another Exec key — with
 * specifiers expanded for `name` and variables from Environment= overridden by `env`. Throws when
 * the unit has no such line or more than one.
 */
export function commandFromUnit(unit: UnitFile, opts: CommandOptions): string[] {
  const key = opts.key ?? 'ExecStart';
  const lines = listValues(unit, 'Service', key);
  if (lines.length !== 1)
    throw new Error(`${opts.name}: expected one ${key}= line, found ${lines.length}`);
  const exec = splitExec(lines[0]!);
  const words = exec.words.map((w) => expandSpecifiers(w, opts.name, opts.specifiers));
  return expandExecWords(words, { ...environmentOf(unit), ...opts.env });
}
