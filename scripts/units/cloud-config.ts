/**
 * Checks a CoreOS/Flatcar cloud-config (pure): the `#cloud-config` header, YAML that parses without
 * warnings, the keys coreos-cloudinit knows (it only warns on others and goes on), unit `command:`
 * values it accepts, and `write_files` modes as strings. Returns the embedded units and drop-ins
 * as unit sources so the unit checker can verify them like files in units/.
 */
import { parseDocument } from 'yaml';
import { parseUnitName } from './unit-file.js';
import type { UnitSource } from './verify.js';

/** coreos-cloudinit's own pattern for `coreos.units[].command`. */
export const UNIT_COMMAND = /^(start|stop|restart|reload|try-restart|reload-or-restart|reload-or-try-restart)$/;

const TOP_KEYS = ['coreos', 'write_files', 'ssh_authorized_keys', 'hostname', 'users', 'manage_etc_hosts'];
const COREOS_KEYS = ['units', 'etcd2', 'fleet', 'flannel', 'locksmith', 'update', 'oem'];
const UNIT_KEYS = ['name', 'mask', 'enable', 'runtime', 'content', 'command', 'drop-ins', 'drop_ins'];
const FILE_KEYS = ['path', 'content', 'permissions', 'owner', 'encoding'];

export interface WriteFile {
  path: string;
  content: string;
  permissions?: string;
}

export interface CloudConfigCheck {
  problems: string[];
  /** Units with content, and drop-ins as `name.d/file.conf`. */
  units: UnitSource[];
  /** Units started by `command: start` (or another command), by name. */
  commands: Record<string, string>;
  files: WriteFile[];
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function unknownKeys(where: string, obj: Obj, known: string[], problems: string[]): void {
  for (const k of Object.keys(obj))
    if (!known.includes(k))
      problems.push(`${where}: unknown key "${k}" (coreos-cloudinit ignores it; known: ${known.join(', ')})`);
}

export function checkCloudConfig(text: string): CloudConfigCheck {
  const out: CloudConfigCheck = { problems: [], units: [], commands: {}, files: [] };
  const p = out.problems;
  if (text.split('\n', 1)[0] !== '#cloud-config')
    p.push('line 1 must be exactly "#cloud-config" (coreos-cloudinit otherwise treats the file as a script or ignores it)');
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false });
  for (const e of [...doc.errors, ...doc.warnings]) p.push(`YAML: ${e.message.split('\n')[0]}`);
  if (doc.errors.length > 0) return out;
  const root: unknown = doc.toJS();
  if (!isObj(root)) {
    p.push('the document is not a mapping');
    return out;
  }
  unknownKeys('top level', root, TOP_KEYS, p);

  const files = root['write_files'] ?? [];
  if (!Array.isArray(files)) p.push('write_files: not a list');
  else
    files.forEach((f: unknown, i) => {
      const where = `write_files[${i}]`;
      if (!isObj(f)) return void p.push(`${where}: not a mapping`);
      unknownKeys(where, f, FILE_KEYS, p);
      const path = f['path'];
      if (typeof path !== 'string' || !path.startsWith('/'))
        return void p.push(`${where}: path must be an absolute path`);
      if (typeof f['content'] !== 'string') p.push(`${where} (${path}): content must be a string`);
      const mode = f['permissions'];
      if (mode !== undefined && (typeof mode !== 'string' || !/^0?[0-7]{3,4}$/.test(mode)))
        p.push(`${where} (${path}): permissions must be a quoted octal string like "0644", got ${JSON.stringify(mode)}`);
      out.files.push({ path, content: String(f['content'] ?? ''), permissions: mode as string | undefined });
    });

  const coreos = root['coreos'] ?? {};
  if (!isObj(coreos)) {
    p.push('coreos: not a mapping');
    return out;
  }
  unknownKeys('coreos', coreos, COREOS_KEYS, p);
  const units = coreos['units'] ?? [];
  if (!Array.isArray(units)) {
    p.push('coreos.units: not a list');
    return out;
  }
  units.forEach((u: unknown, i) => {
    let where = `coreos.units[${i}]`;
    if (!isObj(u)) return void p.push(`${where}: not a mapping`);
    const name = u['name'];
    if (typeof name !== 'string') return void p.push(`${where}: name missing`);
    where = `${where} (${name})`;
    try {
      parseUnitName(name);
    } catch (err) {
      p.push(`${where}: ${(err as Error).message}`);
    }
    unknownKeys(where, u, UNIT_KEYS, p);
    for (const b of ['mask', 'enable', 'runtime'])
      if (u[b] !== undefined && typeof u[b] !== 'boolean') p.push(`${where}: ${b} must be true or false`);
    const command = u['command'];
    if (command !== undefined) {
      if (typeof command !== 'string' || !UNIT_COMMAND.test(command))
        p.push(`${where}: command ${JSON.stringify(command)} is not one of start, stop, restart, reload, try-restart, reload-or-restart, reload-or-try-restart`);
      else out.commands[name] = command;
    }
    const content = u['content'];
    if (content !== undefined) {
      if (typeof content !== 'string') p.push(`${where}: content must be a string`);
      else out.units.push({ path: name, text: content });
    }
    const dropIns = u['drop-ins'] ?? u['drop_ins'] ?? [];
    if (!Array.isArray(dropIns)) return void p.push(`${where}: drop-ins: not a list`);
    dropIns.forEach((d: unknown, j) => {
      if (!isObj(d) || typeof d['name'] !== 'string' || typeof d['content'] !== 'string')
        return void p.push(`${where}: drop-ins[${j}] needs a name and a content`);
      if (!d['name'].endsWith('.conf')) p.push(`${where}: drop-in ${d['name']} must end in .conf`);
      out.units.push({ path: `${name}.d/${d['name']}`, text: d['content'] });
    });
  });
  return out;
}
