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
