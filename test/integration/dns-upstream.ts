/**
 * A stand-in upstream DNS server for the DNS integration test, run inside a test host's
 * namespace: `node dns-upstream.js HOST PORT` answers every A question with 192.0.2.55.
 */
import { createSocket } from 'node:dgram';
import dns2 from 'dns2';

const { Packet } = dns2;
const [host, port] = process.argv.slice(2);
const sock = createSocket('udp4');
sock.on('message', (msg, rinfo) => {
  try {
    const req = Packet.parse(msg);
    const q = req.questions[0];
    if (!q) return;
    const res = Packet.createResponseFromRequest(req);
    res.header.ra = 1;
    if (q.type === Packet.TYPE.A)
      res.answers.push({
        name: q.name,
        type: Packet.TYPE.A,
        class: 1,
        ttl: 30,
        address: '192.0.2.55',
      } as never);
    sock.send(res.toBuffer(), rinfo.port, rinfo.address);
  } catch {
    /* not a query */
  }
});
sock.bind(Number(port), host, () => process.stdout.write(`upstream on ${host}:${port}\n`));
process.on('SIGTERM', () => process.exit(0));
