import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatRecord, keyToName, nameToKey, parseRecord, RecordError } from './records.js';

test('name <-> key by reversed labels', () => {
  const cases: [string, string, string][] = [
    ['x1.web.skydns.local.', '/skydns', '/skydns/local/skydns/web/x1'],
    ['X1.Web.SkyDNS.local', '/skydns', '/skydns/local/skydns/web/x1'],
    ['web.skydns.local.', '/skydns/', '/skydns/local/skydns/web'],
    ['2.7.5.10.in-addr.arpa.', '/skydns', '/skydns/arpa/in-addr/10/5/7/2'],
    ['a.b.', 'dns', '/dns/b/a'],
  ];
  for (const [name, prefix, key] of cases) {
    assert.equal(nameToKey(name, prefix), key, name);
    assert.equal(keyToName(key, prefix), name.toLowerCase().replace(/\.?$/, '.'), key);
  }
  assert.equal(keyToName('/other/local/x', '/skydns'), null);
  assert.equal(keyToName('/skydns/local//x', '/skydns'), null);
  assert.throws(() => nameToKey('a..b', '/skydns'), RecordError);
});

test('record JSON -> typed record', () => {
  const r = parseRecord('/k', '{"host":"10.5.7.2","port":80}');
  assert.deepEqual(r, {
    host: '10.5.7.2',
    port: 80,
    priority: 10,
    weight: 0,
    text: '',
    mail: false,
    ttl: 0,
    targetstrip: 0,
    group: '',
    alias: false,
  });
  assert.equal(parseRecord('/k', '{"host":"Alias.Example.COM"}').host, 'alias.example.com.');
  assert.equal(parseRecord('/k', '{"text":"hello"}').text, 'hello');
  assert.equal(parseRecord('/k', '{"host":"::1","priority":20}').priority, 20);
  assert.equal(parseRecord('/k', '{"host":"a.b","mail":true,"ttl":30}').ttl, 30);
});

test('malformed record JSON gives one clear error naming the key and field', () => {
  const cases: [string, RegExp][] = [
    ['not json', /record at \/k: not JSON/],
    ['[1]', /must be a JSON object/],
    ['{"host":10}', /"host" must be a string/],
    ['{"host":"10.0.0.1","port":"80"}', /"port" must be a whole number 0..65535, got "80"/],
    ['{"host":"10.0.0.1","port":70000}', /"port" must be a whole number/],
    ['{"host":"10.0.0.1","ttl":-1}', /"ttl" must be a whole number/],
    ['{"host":"10.0.0.1","mail":"yes"}', /"mail" must be true or false/],
    ['{"host":"bad host!"}', /neither an IP address nor a domain name/],
    ['{}', /needs a "host"/],
  ];
  for (const [value, re] of cases) assert.throws(() => parseRecord('/k', value), re, value);
});

test('formatRecord round-trips through parseRecord', () => {
  const json = formatRecord({ host: '10.5.7.2', port: 80, ttl: 30, group: 'g' });
  assert.equal(json, '{"host":"10.5.7.2","port":80,"ttl":30,"group":"g"}');
  const r = parseRecord('/k', json);
  assert.equal(r.port, 80);
  assert.equal(r.group, 'g');
});
