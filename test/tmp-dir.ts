// A test body that gets a fresh temp dir (`<tmpdir>/<prefix>XXXXXX`), removed afterwards
// whatever the body did: `test('…', withTmpDir('flt-store-', async (dir) => { … }))`.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function withTmpDir(
  prefix: string,
  fn: (dir: string) => void | Promise<void>,
): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}
