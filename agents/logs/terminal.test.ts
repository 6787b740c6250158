import { test } from 'node:test';
import assert from 'node:assert/strict';
import { visible } from './terminal.js';

test('visible: control and reordering characters become escapes; printable text is untouched', () => {
  const cases: [string, string, string][] = [
    ['plain text', 'GET / 200', 'GET / 200'],
    ['tab kept', 'a\tb', 'a\tb'],
    ['unicode kept', 'naïve 日本語 🚀', 'naïve 日本語 🚀'],
    ['backslash kept', 'C:\\x1b', 'C:\\x1b'],
    ['OSC title set', '\x1b]0;pwned\x07', '\\x1b]0;pwned\\x07'],
    ['screen clear + home', '\x1b[2J\x1b[H', '\\x1b[2J\\x1b[H'],
    ['cursor up rewrites an earlier line', 'ok\x1b[1A\rFAKE', 'ok\\x1b[1A\\x0dFAKE'],
    ['newline inside a record', 'a\nb', 'a\\x0ab'],
    ['NUL and DEL', '\x00x\x7f', '\\x00x\\x7f'],
    ['C1 CSI (U+009B)', '\u009b2J', '\\x9b2J'],
    ['bidi override', 'abc\u202edcba', 'abc\\u{202e}dcba'],
    ['bidi isolate', '\u2066x\u2069', '\\u{2066}x\\u{2069}'],
  ];
  for (const [name, input, want] of cases) assert.equal(visible(input), want, name);
});

// An independent statement of what a terminal acts on (not visible()'s own pattern object).
// eslint-disable-next-line no-control-regex
const ACTS_ON_TERMINAL = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

test('visible: the result never holds a character a terminal acts on, for every code unit', () => {
  for (let c = 0; c <= 0xffff; c++) {
    const out = visible(`a${String.fromCharCode(c)}b`);
    assert.ok(!ACTS_ON_TERMINAL.test(out), `U+${c.toString(16)}`);
  }
});
