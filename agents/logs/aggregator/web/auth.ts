/**
 * Bearer-token access to the aggregator's page and query API (`--http-token`). A request is let
 * through when it carries `Authorization: Bearer <token>` or the session cookie the page sets;
 * `GET /?token=<token>` (a link a person can open once) sets that cookie and redirects to the
 * same page without the token in the address. Everything else is a one-line 401. The cookie holds
 * an HMAC of the token, not the token, and changing the token invalidates every cookie.
 * /healthz, /readyz and /metrics are served by the health server itself and stay open.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Route } from '../../../common/http.js';

export const COOKIE = 'flotilla_logs';

/** What to do with a request, decided from its headers and URL alone (pure). */
export type Verdict =
  | { kind: 'allow' }
  | { kind: 'login'; location: string; setCookie: string }
  | { kind: 'deny'; message: string };

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The cookie value for a token. */
export function cookieValue(token: string): string {
  return createHmac('sha256', token).update('flotilla-logs-page-v1').digest('base64url');
}

function cookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

/**
 * Decides a request against `token`. `secure` (the page is reached over HTTPS, e.g. through a
 * proxy that sets X-Forwarded-Proto) adds `Secure` to the cookie.
 */
export function checkToken(
  token: string,
  req: { method?: string; headers: { authorization?: string; cookie?: string } },
  url: URL,
  secure = false,
): Verdict {
  const auth = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  if (auth && same(auth[1]!, token)) return { kind: 'allow' };
  const c = cookie(req.headers.cookie, COOKIE);
  if (c !== undefined && same(c, cookieValue(token))) return { kind: 'allow' };
  const given = url.searchParams.get('token');
  if (given !== null && url.pathname === '/' && (req.method ?? 'GET') === 'GET') {
    if (!same(given, token)) return { kind: 'deny', message: 'token: not the --http-token' };
    const rest = new URLSearchParams(url.searchParams);
    rest.delete('token');
    const qs = rest.toString();
    return {
      kind: 'login',
      location: `./${qs ? `?${qs}` : ''}`,
      setCookie: `${COOKIE}=${cookieValue(token)}; Path=/; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`,
    };
  }
  return {
    kind: 'deny',
    message: auth
      ? 'authorization: not the --http-token'
      : 'authorization: required (send "Authorization: Bearer <token>", or open /?token=<token> once in a browser)',
  };
}

/** Wraps every route so that it needs the token; with no token the routes are returned as-is. */
export function withToken(routes: Record<string, Route>, token?: string): Record<string, Route> {
  if (!token) return routes;
  const guarded: Record<string, Route> = {};
  for (const [path, route] of Object.entries(routes)) {
    guarded[path] = (req: IncomingMessage, res: ServerResponse, url: URL) => {
      const secure = req.headers['x-forwarded-proto'] === 'https';
      const v = checkToken(token, req, url, secure);
      if (v.kind === 'allow') return route(req, res, url);
      if (v.kind === 'login') {
        res.writeHead(303, {
          location: v.location,
          'set-cookie': v.setCookie,
          'cache-control': 'no-store',
          'referrer-policy': 'no-referrer',
        });
        res.end();
        return;
      }
      res.writeHead(401, {
        'content-type': 'text/plain; charset=utf-8',
        'www-authenticate': 'Bearer realm="flotilla-logs"',
      });
      res.end(`${v.message}\n`);
    };
  }
  return guarded;
}
