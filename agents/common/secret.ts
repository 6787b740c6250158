/**
 * Secrets given on the command line or, better, in a file (the units use files, so no secret
 * shows in `ps` or `systemctl status`): `--x KEY` or `--x-file FILE`, one of them, the secret
 * being the file's first line without surrounding whitespace. install.sh writes these files
 * under /etc/flotilla with mode 0600.
 */
import { readFileSync } from 'node:fs';
import { ConfigError, UsageError, errorMessage } from './errors.js';

export interface SecretSource {
  /** Flag of the value itself, without dashes, e.g. "shared-key". */
  flag: string;
  value?: string | undefined;
  /** Its file flag, e.g. "shared-key-file". */
  fileFlag: string;
  file?: string | undefined;
  /** A default file that may be absent (undefined then), rather than one the user named. */
  optionalFile?: string | undefined;
}

/** The secret's text from `--flag`, `--flag-file` or the optional default file; undefined if none. */
export function secretFrom(s: SecretSource): string | undefined {
  if (s.value && s.file)
    throw new UsageError(`--${s.flag} and --${s.fileFlag}: give one, not both`);
  if (s.value) return s.value;
  const file = s.file || s.optionalFile;
  if (!file) return undefined;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // An absent default, or one for root only read by another user: as if none (a 401 then
    // says where the token is).
    if (!s.file && (code === 'ENOENT' || code === 'EACCES')) return undefined;
    const hint =
      code === 'EACCES'
        ? ' (the file is for root only: run with sudo, or give --' + s.flag + ')'
        : '';
    throw new ConfigError(`--${s.fileFlag}: cannot read "${file}": ${errorMessage(err)}${hint}`);
  }
  const t = text.split(/\r?\n/)[0]!.trim();
  if (!t) throw new ConfigError(`--${s.fileFlag}: "${file}" holds no secret on its first line`);
  if (/\s/.test(t))
    throw new ConfigError(`--${s.fileFlag}: the secret in "${file}" contains spaces`);
  return t;
}
