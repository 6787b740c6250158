/**
 * The aggregator's query API, as routes for the shared health server:
 *   GET /v1/services                     → {"services":[{service,count,bytes,firstSeen,lastSeen}]}
 *   GET /v1/logs?service=S[&host=H][&container=C][&since=T][&until=T][&grep=RE][&limit=N][&follow=1]
 *        → NDJSON, one LogLine per line, oldest first; with follow=1 the response stays open and
 *          new matching records are appended as they are stored.
 * T is ms since epoch (fractions allowed, as in a record's `ts`), an RFC 3339 time or a duration
 * back from now (10m, 1h). Bad parameters → 400 with one line.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseDuration } from '../../common/cli.js';
import type { Route } from '../../common/http.js';
import { decodeEntries, type Entry } from '../forward/codec.js';
import { PartialAssembler } from '../partial.js';
import { matches, runQuery, toLine, type LogQuery } from './query.js';
import type { Store } from './store.js';

export class BadRequest extends Error {
  constructor(
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

/** Longest request target served (path + query); longer gets 414 before anything is read. */
export const MAX_URL_BYTES = 8 * 1024;
/** Largest `limit`: a bigger one would read the whole history; `logs export` is for that. */
export const MAX_LIMIT = 100_000;

/**
 * A service name as a query may give it: what the store can hold, nothing that looks like a
 * path step or carries control characters (the store maps names to `s_<urlencoded>` dirs, so
 * no name reaches the file system, but such a query is a probe, not a lookup).
 */
export function checkService(service: string): void {
  if (service.length > 256) throw new BadRequest('service: longer than 256 characters');
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(service)) throw new BadRequest('service: contains control characters');
  if (service.split(/[/\\]/).some((step) => step === '..' || step === '.'))
    throw new BadRequest(`service: "${service}" is not a service name (a path step . or ..)`);
}

/** 414 for a request target over MAX_URL_BYTES (the route reads nothing then). */
export function checkUrlSize(req: IncomingMessage): void {
  if ((req.url ?? '').length > MAX_URL_BYTES)
    throw new BadRequest(`request: longer than ${MAX_URL_BYTES} bytes`, 414);
}

function time(name: string, v: string | null, now: number): number | undefined {
  if (v === null || v === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v); // fractional: a record's `ts`, exactly
  const d = Date.parse(v);
  if (!Number.isNaN(d) && /^\d{4}-/.test(v)) return d;
  try {
    return now - parseDuration(v);
  } catch {
    throw new BadRequest(
      `${name}: "${v}" is not ms since epoch, an RFC 3339 time or a duration like 10m`,
    );
  }
}

/** Parses the query string of /v1/logs. */
export function parseLogQuery(url: URL, now = Date.now()): LogQuery & { follow: boolean } {
  const p = url.searchParams;
  const service = p.get('service');
  if (!service) throw new BadRequest('service: required (e.g. ?service=nginx)');
  checkService(service);
  const q: LogQuery & { follow: boolean } = {
    service,
    follow: /^(1|true)$/.test(p.get('follow') ?? ''),
  };
  const host = p.get('host');
  if (host) q.host = host;
  const container = p.get('container');
  if (container) q.container = container;
  const since = time('since', p.get('since'), now);
  if (since !== undefined) q.since = since;
  const until = time('until', p.get('until'), now);
  if (until !== undefined) q.until = until;
  const grep = p.get('grep');
  if (grep) {
    try {
      q.grep = new RegExp(grep);
    } catch (err) {
      throw new BadRequest(`grep: ${(err as Error).message}`);
    }
  }
  const limit = p.get('limit');
  if (limit !== null && limit !== '') {
    if (!/^\d+$/.test(limit)) throw new BadRequest(`limit: "${limit}" is not a whole number`);
    q.limit = Number(limit);
    if (q.limit > MAX_LIMIT)
      throw new BadRequest(
        `limit: ${limit} is more than ${MAX_LIMIT} (leave it out for everything, or use logs export)`,
      );
  }
  return q;
}

function badRequest(res: ServerResponse, err: BadRequest): void {
  res.writeHead(err.status, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(`${(err as Error).message}\n`);
}

export function queryRoutes(store: Store, partialTimeoutMs = 5000): Record<string, Route> {
  return {
    '/v1/services': (req, res) => {
      try {
        checkUrlSize(req);
      } catch (err) {
        return badRequest(res, err as BadRequest);
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ services: store.services() }));
    },
    '/v1/logs': (req: IncomingMessage, res: ServerResponse, url: URL) => {
      let q: ReturnType<typeof parseLogQuery>;
      try {
        checkUrlSize(req);
        q = parseLogQuery(url);
      } catch (err) {
        if (err instanceof BadRequest) return badRequest(res, err);
        throw err;
      }
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      // History and subscription happen in one synchronous step: no record falls between them.
      const history = runQuery(q, store.segments(q.service), (seg, a, b) =>
        store.readSegment(seg, a, b),
      );
      let out = history.map((l) => JSON.stringify(l)).join('\n');
      if (out) out += '\n';
      if (!q.follow) {
        res.end(out);
        return;
      }
      res.write(out);
      const asm = new PartialAssembler(partialTimeoutMs);
      const send = (es: Entry[]) => {
        let text = '';
        for (const e of es) {
          const l = toLine(e);
          if (matches({ ...q, since: undefined, until: undefined }, l))
            text += `${JSON.stringify(l)}\n`;
        }
        if (text) res.write(text);
      };
      const off = store.onAppend((service, blob) => {
        if (service !== q.service) return;
        const es: Entry[] = [];
        for (const e of decodeEntries(blob)) es.push(...asm.push(e));
        send(es);
      });
      const timer = setInterval(() => send(asm.flush()), 1000);
      const done = () => {
        off();
        clearInterval(timer);
      };
      req.on('close', done);
      res.on('close', done);
    },
  };
}
