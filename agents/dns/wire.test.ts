import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import '../../test/fc-seed.js';
import dns2 from 'dns2';
import { encodeAnswer } from './encode.js';
import { T, type Answer } from './lookup.js';
import { buildQuery } from './testdata.js';
import {
  errorReply,
  parseQuery,
  patchAnswer,
  questionName,
  sameQuestion,
  truncate,
  type Query,
} from './wire.js';

const { Packet } = dns2;

test('parseQuery reads question, EDNS and builds a case-exact key', () => {
  const q = parseQuery(buildQuery('Web.SkyDNS.local', T.SRV, { id: 7, edns: 4096, do: true }));
  assert.ok(typeof q !== 'string');
  assert.equal(q.id, 7);
  assert.equal(q.rd, true);
  assert.equal(q.qtype, T.SRV);
  assert.equal(q.qclass, 1);
  assert.deepEqual(q.edns, { size: 4096, do: true, version: 0 });
  const lower = parseQuery(
    buildQuery('web.skydns.local', T.SRV, { edns: 4096, do: true }),
  ) as Query;
  const noDo = parseQuery(buildQuery('Web.SkyDNS.local', T.SRV, { edns: 4096 })) as Query;
  const plain = parseQuery(buildQuery('Web.SkyDNS.local', T.SRV)) as Query;
  assert.equal(new Set([q, lower, noDo, plain].map((x) => `${x.key}|${x.variant}`)).size, 4);
  assert.equal(plain.edns, null);
  assert.equal(questionName(buildQuery('Web.SkyDNS.local', T.A)), 'Web.SkyDNS.local.');
});

test('parseQuery rejects malformed requests with a reason', () => {
  const good = buildQuery('a.b', T.A);
  const cases: [string, Buffer, RegExp][] = [
    ['empty', Buffer.alloc(0), /shorter/],
    ['response', Buffer.from(good).fill(0x80, 2, 3), /QR set/],
    [
      'two questions',
      (() => {
        const b = Buffer.from(good);
        b.writeUInt16BE(2, 4);
        return b;
      })(),
      /count is not 1/,
    ],
    ['cut name', buildQuery('abcdefgh.example', T.A).subarray(0, 20), /past the end/],
    ['cut type', good.subarray(0, good.length - 2), /type\/class/],
    [
      'pointer',
      Buffer.concat([good.subarray(0, 12), Buffer.from([0xc0, 0x0c, 0, 1, 0, 1])]),
      /compressed/,
    ],
    [
      'bogus arcount',
      (() => {
        const b = Buffer.from(good);
        b.writeUInt16BE(3, 10);
        return b;
      })(),
      /additional/,
    ],
    [
      'dot in label',
      Buffer.concat([good.subarray(0, 12), Buffer.from([3, 0x61, 0x2e, 0x62, 0, 0, 1, 0, 1])]),
      /holds/,
    ],
  ];
  for (const [label, buf, re] of cases) {
    const r = parseQuery(buf);
    assert.equal(typeof r, 'string', label);
    assert.match(r as string, re, label);
  }
});

test('parseQuery never throws on random or mutated bytes', () => {
  const base = buildQuery('x1.web.skydns.local', T.SRV, { edns: 1232 });
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
      parseQuery(Buffer.from(bytes));
    }),
    { numRuns: 3000 },
  );
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })), {
        maxLength: 6,
      }),
      fc.nat(base.length),
      (flips, cut) => {
        const b = Buffer.from(base);
        for (const [i, v] of flips) b[i] = v;
        parseQuery(b.subarray(0, cut));
      },
    ),
    { numRuns: 3000 },
  );
});

const bigAnswer = (q: Query): Buffer => {
  const a: Answer = {
    rcode: 0,
    authoritative: true,
    answer: Array.from({ length: 60 }, (_, i) => ({
      name: 'web.skydns.local.',
      ttl: 30,
      data: { type: T.A, address: `10.0.${i}.1` },
    })),
    authority: [],
    additional: [],
  };
  return encodeAnswer(q, 'web.skydns.local.', a, false);
};

test('truncate keeps whole answer records, sets TC, keeps OPT', () => {
  for (const edns of [0, 700]) {
    const q = parseQuery(buildQuery('web.skydns.local', T.A, edns ? { edns } : {})) as Query;
    const full = bigAnswer(q);
    const limit = edns || 512;
    assert.ok(full.length > limit);
    const cut = truncate(full, limit);
    assert.ok(cut.length <= limit, `${cut.length} <= ${limit}`);
    const p = Packet.parse(cut);
    assert.deepEqual(p.errors, []);
    assert.equal(p.header.tc, 1);
    assert.ok(p.answers.length > 10 && p.answers.length < 60);
    assert.equal(p.additionals.length, edns ? 1 : 0);
    assert.equal(truncate(cut, limit), cut);
  }
});

test('patchAnswer sets ID, RD and CD from the request only', () => {
  const q = parseQuery(buildQuery('web.skydns.local', T.A)) as Query;
  const cached = bigAnswer(q);
  const other = { ...q, id: 0xbeef, rd: false, cd: true };
  const out = patchAnswer(cached, other);
  assert.equal(out.readUInt16BE(0), 0xbeef);
  assert.equal(out[2]! & 1, 0);
  assert.equal(out[3]! & 0x10, 0x10);
  assert.deepEqual(out.subarray(4), cached.subarray(4));
});

test('errorReply echoes the question and carries BADVERS in the OPT', () => {
  const req = buildQuery('x.y', T.A, { edns: 1232 });
  const q = parseQuery(req) as Query;
  const p = Packet.parse(errorReply(req, q, 16, true));
  assert.equal(p.header.qr, 1);
  assert.equal(p.header.rcode, 16);
  assert.equal(p.questions[0]!.name, 'x.y');
  const r = Packet.parse(errorReply(req, q, 5, false));
  assert.equal(r.header.rcode, 5);
  assert.equal(r.header.ra, 0);
});

test('sameQuestion: case-insensitive name, same type and class', () => {
  const q = buildQuery('Www.Example.test', T.A);
  const cases: [Buffer, boolean][] = [
    [buildQuery('www.example.TEST', T.A, { id: 9 }), true],
    [buildQuery('www.example.test', T.AAAA), false],
    [buildQuery('www.example.tes', T.A), false],
    [buildQuery('wwx.example.test', T.A), false],
    [q.subarray(0, 14), false],
  ];
  for (const [b, want] of cases) assert.equal(sameQuestion(q, b), want, b.toString('hex'));
});
