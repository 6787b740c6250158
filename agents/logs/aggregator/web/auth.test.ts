import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkToken, cookieValue, COOKIE, type Verdict } from './auth.js';
import { parseLogQuery } from '../http.js';

const T = 'tok-123';
const at = (path: string) => new URL(path, 'http://agg');

test('requests against --http-token: header, cookie, one-time ?token= link, or a one-line 401', () => {
  const cases: [string, Parameters<typeof checkToken>[1], string, Verdict['kind'], string?][] = [
    ['bearer header', { headers: { authorization: `Bearer ${T}` } }, '/v1/services', 'allow'],
    ['bearer, any case', { headers: { authorization: `bearer ${T}` } }, '/v1/logs', 'allow'],
    ['wrong bearer', { headers: { authorization: 'Bearer nope' } }, '/v1/logs', 'deny', 'not the'],
    ['no credentials', { headers: {} }, '/', 'deny', 'required'],
    ['the token as cookie', { headers: { cookie: `${COOKIE}=${T}` } }, '/', 'deny'],
    [
      'page cookie',
      { headers: { cookie: `a=b; ${COOKIE}=${cookieValue(T)}; c=d` } },
      '/v1/logs?service=x',
      'allow',
    ],
    [
      'cookie of another token',
      { headers: { cookie: `${COOKIE}=${cookieValue('x')}` } },
      '/',
      'deny',
    ],
    ['?token= on the page', { headers: {} }, `/?service=nginx&token=${T}&grep=a`, 'login'],
    ['wrong ?token=', { headers: {} }, '/?token=nope', 'deny', 'not the'],
    ['?token= only opens the page', { headers: {} }, `/v1/services?token=${T}`, 'deny'],
    ['?token= by POST', { method: 'POST', headers: {} }, `/?token=${T}`, 'deny'],
  ];
  for (const [name, req, path, kind, msg] of cases) {
    const v = checkToken(T, req, at(path));
    assert.equal(v.kind, kind, name);
    if (msg) assert.match((v as { message: string }).message, new RegExp(msg), name);
    if (v.kind === 'deny') assert.doesNotMatch(v.message, /\n/, name);
  }
});

test('the login redirect drops the token from the address and sets an HttpOnly cookie', () => {
  const v = checkToken(T, { headers: {} }, at(`/?service=nginx&token=${T}&grep=a+b`), true);
  assert.deepEqual(v, {
    kind: 'login',
    location: './?service=nginx&grep=a+b',
    setCookie: `${COOKIE}=${cookieValue(T)}; Path=/; HttpOnly; SameSite=Strict; Secure`,
  });
  const bare = checkToken(T, { headers: {} }, at(`/?token=${T}`));
  assert.equal(bare.kind === 'login' && bare.location, './');
  assert.ok(!cookieValue(T).includes(T));
});

test('until/since take a record ts exactly, fractions included (the page pages back by it)', () => {
  const ts = 1795431600123.4568;
  const q = parseLogQuery(at(`/v1/logs?service=s&until=${String(ts)}&since=1795431600000`));
  assert.equal(q.until, ts);
  assert.equal(q.since, 1795431600000);
  assert.throws(() => parseLogQuery(at('/v1/logs?service=s&until=12.')), /until: "12\." is not/);
});
