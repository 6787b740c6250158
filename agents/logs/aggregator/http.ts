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

export class BadRequest extends Error {}

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
  }
  return q;
}

function badRequest(res: ServerResponse, err: unknown): void {
  res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(`${(err as Error).message}\n`);
}

export function queryRoutes(store: Store, partialTimeoutMs = 5000): Record<string, Route> {
  return {
    '/v1/services': (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ services: store.services() }));
    },
    '/v1/logs': (req: IncomingMessage, res: ServerResponse, url: URL) => {
      let q: ReturnType<typeof parseLogQuery>;
      try {
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
