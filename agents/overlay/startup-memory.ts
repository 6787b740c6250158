/**
 * Once the cold start is applied, takes the file pages only the start-up touched out of RSS
 * (docs/overlay.md, "Where the memory goes"): native/pages.c's `releaseFilePages` drops this
 * process's page-table entries for the node binary's (and the libraries') clean read-only file
 * mappings, and what overlayd runs afterwards maps its pages back from the page cache. Start-up
 * touches ~43 MiB of them (module loading, the snapshot, OpenSSL's and V8's initialisation, the
 * kernel's fault-around); a running overlayd maps ~20 MiB again within a minute. It changes
 * nothing in what overlayd does; a missing addon (a checkout not built with
 * scripts/build-addon.sh) is one warning.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../common/logger.js';
import { errorMessage } from '../common/errors.js';

/** What native/pages.c's releaseFilePages reports. */
export interface FilePagesReleased {
  /** Mappings advised MADV_DONTNEED. */
  mappings: number;
  /** Their total (virtual) size in bytes; only the resident part leaves RSS. */
  bytes: number;
  /** Read-only file mappings left alone because they hold copy-on-write pages (RELRO). */
  skipped: number;
}

interface Native {
  releaseFilePages(): FilePagesReleased;
}

export const PAGES_ADDON = fileURLToPath(new URL('./native/pages.node', import.meta.url));

/** Loads the addon: its `releaseFilePages`, or why it cannot be used. */
export function loadFilePageRelease(path = PAGES_ADDON): (() => FilePagesReleased) | Error {
  let native: Native;
  try {
    native = createRequire(import.meta.url)(path) as Native;
  } catch (err) {
    return new Error(`${path}: ${errorMessage(err).split('\n')[0]}`);
  }
  if (typeof native.releaseFilePages !== 'function')
    return new Error(`${path}: not overlayd's pages addon`);
  return () => native.releaseFilePages();
}

const MiB = (n: number) => (n / 1048576).toFixed(1);

/** Releases the start-up file pages now; logs one line (RSS before and after, or why not). */
export function releaseStartupPages(log: Logger, addon = PAGES_ADDON): void {
  const release = loadFilePageRelease(addon);
  if (release instanceof Error) {
    log.warn(`start-up file pages stay in RSS: ${release.message}`);
    return;
  }
  const before = process.memoryUsage.rss();
  try {
    const r = release();
    log.info(
      `cold start applied: ${r.mappings} read-only file mappings (${MiB(r.bytes)} MiB) released from RSS, ${MiB(before)} → ${MiB(process.memoryUsage.rss())} MiB`,
    );
  } catch (err) {
    log.warn(`start-up file pages stay in RSS: ${errorMessage(err)}`);
  }
}
