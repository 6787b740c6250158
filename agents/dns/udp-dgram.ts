/** The `dgram` UDP transport (udp.ts): Node's own socket, one callback and one send per packet. */
import { createSocket } from 'node:dgram';
import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import { errorMessage } from '../common/errors.js';
import { UDP_BUFFER_BYTES, type UdpTransport } from './udp.js';

export const dgramTransport: UdpTransport = {
  name: 'dgram',
  bind: (host, port, answer, log) =>
    new Promise((resolve, reject) => {
      const family = isIP(host) === 6 ? 6 : 4;
      const s = createSocket({
        type: family === 6 ? 'udp6' : 'udp4',
        recvBufferSize: UDP_BUFFER_BYTES,
        sendBufferSize: UDP_BUFFER_BYTES,
        // Replies go to rinfo.address, always an IP literal: skip dns.lookup and its nextTick.
        lookup: (address, _opts, cb) =>
          (cb as (err: null, address: string, family: number) => void)(null, address, family),
      });
      s.on('message', (msg, rinfo) => {
        const out = answer(msg, rinfo.address, performance.now());
        if (out === null) return;
        if (out instanceof Promise)
          out.then(
            (b) => {
              if (b) s.send(b, rinfo.port, rinfo.address);
            },
            () => undefined,
          );
        else s.send(out, rinfo.port, rinfo.address);
      });
      s.once('error', reject);
      s.bind(port, host, () => {
        s.removeListener('error', reject);
        s.on('error', (err) => log.warn({ err: errorMessage(err) }, 'udp socket error'));
        resolve({
          port: s.address().port,
          close: () => new Promise<void>((r) => s.close(() => r())),
        });
      });
    }),
};
