/**
 * The health and metrics endpoint every agent serves:
 *   GET /healthz  200 "ok" while the process runs;
 *   GET /readyz   200 when `ready()` returns true, else 503 with the reason it returned;
 *   GET /metrics  Prometheus text format from the agent's registry.
 * Extra routes (an agent's own API) can be added through `routes`.
 */
import { createRequire } from 'node:module';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

/**
 * node:http through require, not `import`: an ES import of a built-in evaluates every export,
 * and node:http's lazy WebSocket/EventSource getters then load undici (~13 MiB of RSS and
 * ~50 ms of start-up that no agent uses).
 */
const { createServer } = createRequire(import.meta.url)('node:http') as typeof import('node:http');

export type Route = (req: IncomingMessage, res: ServerResponse, url: URL) => void | Promise<void>;

export interface HealthServerOptions {
  host: string;
  port: number;
  registry: Registry;
  /** true when ready, or a string saying why not. */
  ready: () => true | string;
  routes?: Record<string, Route>;
}

export interface HealthServer {
  server: Server;
  port: number;
  close(): Promise<void>;
}

/** Splits "host:port" (or "[v6]:port", or ":port" for all addresses). */
export function splitHostPort(addr: string, flag: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(addr);
  if (!m || Number(m[3]) > 65535) throw new Error(`${flag}: "${addr}" is not host:port`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port: Number(m[3]) };
}

export async function startHealthServer(opts: HealthServerOptions): Promise<HealthServer> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://agent');
    const send = (code: number, body: string, type = 'text/plain; charset=utf-8') => {
      res.writeHead(code, { 'content-type': type });
      res.end(body);
    };
    const route = opts.routes?.[url.pathname];
    if (route) {
      Promise.resolve(route(req, res, url)).catch((err: unknown) => {
        if (!res.headersSent) send(500, `${String(err)}\n`);
        else res.destroy();
      });
      return;
    }
    switch (url.pathname) {
      case '/healthz':
        return send(200, 'ok\n');
      case '/readyz': {
        const r = opts.ready();
        return r === true ? send(200, 'ready\n') : send(503, `not ready: ${r}\n`);
      }
      case '/metrics':
        opts.registry.metrics().then(
          (text) => send(200, text, opts.registry.contentType),
          (err: unknown) => send(500, String(err)),
        );
        return;
      default:
        return send(404, 'not found\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
