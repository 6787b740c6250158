/**
 * The forward input over Node's own sockets (`--forward-io node`, and `auto` when the native
 * receiver cannot load): every frame is decoded, stored and acked in JavaScript, on the socket's
 * data callback. Frames are handled in order; synchronously when possible (no pause/resume
 * round trip per Docker line), else the socket is paused until the frame is stored.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { existsSync, unlinkSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { errorMessage } from '../../common/errors.js';
import { ForwardDecoder, type Frame } from '../forward/codec.js';
import type { InputContext } from './input.js';
import type { ForwardCore } from './forward-core.js';
import type { ForwardListener, ForwardTransportConfig } from './forward.js';

export async function listenNode(
  ctx: InputContext,
  core: ForwardCore,
  cfg: ForwardTransportConfig,
): Promise<ForwardListener> {
  const { log, shipper } = ctx;
  const sockets = new Set<Socket>();
  const onConnection = (sock: Socket) => {
    sockets.add(sock);
    sock.setNoDelay(true);
    const decoder = new ForwardDecoder();
    const peer = sock.remoteAddress ? `${sock.remoteAddress}:${sock.remotePort}` : 'unix';
    const fail = (err: unknown) => {
      core.counters.malformed.inc();
      log.warn({ peer, err: errorMessage(err) }, 'malformed forward input; closing connection');
      sock.destroy();
    };
    const queue: Frame[] = [];
    let busy = false;
    const drain = (): void => {
      while (queue.length > 0) {
        let r: true | Promise<void>;
        try {
          r = core.handleFrame(sock, queue.shift()!);
        } catch (err) {
          fail(err);
          return;
        }
        if (r !== true) {
          busy = true;
          sock.pause();
          r.then(() => {
            busy = false;
            sock.resume();
            drain();
          }, fail);
          return;
        }
      }
      shipper.kick();
    };
    sock.on('data', (chunk: Buffer) => {
      try {
        const frames = decoder.push(chunk);
        for (let i = 0; i < frames.length; i++) queue.push(frames[i]!);
      } catch (err) {
        fail(err);
        return;
      }
      if (!busy) drain();
    });
    sock.on('error', () => undefined);
    sock.on('close', () => sockets.delete(sock));
  };

  const servers: Server[] = [];
  let port = 0;
  const listen = (srv: Server, ...args: unknown[]) =>
    new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      (srv.listen as (...a: unknown[]) => void)(...args, () => resolve());
    });
  if (cfg.listen) {
    const srv = createServer(onConnection);
    await listen(srv, cfg.listen.port, cfg.listen.host);
    port = (srv.address() as AddressInfo).port;
    servers.push(srv);
  }
  if (cfg.unixSocket) {
    if (existsSync(cfg.unixSocket)) unlinkSync(cfg.unixSocket);
    const srv = createServer(onConnection);
    await listen(srv, cfg.unixSocket);
    servers.push(srv);
  }
  return {
    port,
    async stop() {
      for (const s of servers) s.close();
      for (const s of sockets) s.destroy();
    },
  };
}
