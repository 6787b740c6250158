/**
 * Terminal-safe text: what `logs tail` prints on a TTY. A log line is data written by whatever
 * runs in a container; printed as it is, its control characters act on the operator's terminal
 * (`\x1b]0;…\x07` retitles it, `\x1b[2J` clears it, cursor moves rewrite earlier lines). `visible`
 * shows every such character as a `\xNN` / `\u{NNNN}` escape instead, so the line reads as what it
 * contains. Kept as they are: tab, and every printable character of any script.
 *
 * Escaped: C0 controls but tab (U+0000–U+001F), DEL (U+007F), C1 controls (U+0080–U+009F, which
 * some terminals also obey, e.g. U+009B as CSI), and the bidirectional overrides and isolates
 * (U+202A–U+202E, U+2066–U+2069) that reorder what is shown. A backslash is left alone: escapes
 * are for reading, not for round-tripping (`--raw` or `--json` give the exact text).
 */
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

function escapeOne(c: string): string {
  const code = c.codePointAt(0)!;
  return code <= 0xff
    ? `\\x${code.toString(16).padStart(2, '0')}`
    : `\\u{${code.toString(16).padStart(4, '0')}}`;
}

/** `text` with every control and reordering character shown as an escape (see above). */
export function visible(text: string): string {
  return text.replace(UNSAFE, escapeOne);
}
