/**
 * The live tail page's routes for the aggregator's HTTP server: `/` (the page), `/app.js` (its
 * one ES module, compiled to dist beside this file and read once at start), `/app.css`. Served
 * with a Content-Security-Policy that allows only the aggregator's own script, style and API:
 * even a log line that slipped past the page's escaping could not run a script.
 */
import { readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import type { Route } from '../../../common/http.js';
import { APP_CSS, INDEX_HTML } from './page.js';

const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

function serve(type: string, body: string): Route {
  const buf = Buffer.from(body);
  return (_req, res: ServerResponse) => {
    res.writeHead(200, {
      'content-type': type,
      'content-length': buf.length,
      'cache-control': 'no-cache',
      ...SECURITY_HEADERS,
    });
    res.end(buf);
  };
}

/** The page's routes. Throws at start if app.js is missing from the build. */
export function webRoutes(): Record<string, Route> {
  const file = new URL('./app.js', import.meta.url);
  let js: string;
  try {
    js = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(
      `logs page: cannot read ${file.pathname} (${(err as Error).message}); run the build (npm run build)`,
    );
  }
  return {
    '/': serve('text/html; charset=utf-8', INDEX_HTML),
    '/app.js': serve('text/javascript; charset=utf-8', js),
    '/app.css': serve('text/css; charset=utf-8', APP_CSS),
  };
}
