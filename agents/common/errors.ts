/**
 * Typed errors shared by every agent. `UsageError` is a bad flag or flag value (exit 2);
 * `ConfigError` is bad configuration found at start (exit 1). Both carry a one-line message
 * meant for the user: what was wrong, where, and what to do.
 */
export class UsageError extends Error {
  override name = 'UsageError';
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Message of any thrown value, for logs. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * A write failed because the file system is full (ENOSPC) or over quota (EDQUOT). The writer
 * has undone the partial write, so retrying once space returns is safe.
 */
export class DiskFullError extends Error {
  override name = 'DiskFullError';
  constructor(
    readonly dir: string,
    readonly code: string,
  ) {
    super(`${dir}: no space left on the file system (${code}); writes resume when space returns`);
  }
}

/** The errno code when `err` means "file system full", else undefined. */
export function noSpaceCode(err: unknown): string | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT' ? code : undefined;
}
