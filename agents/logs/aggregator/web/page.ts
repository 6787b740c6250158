/**
 * The live tail page's HTML and stylesheet. Its behaviour is in app.js (an ES module compiled
 * to dist beside this file); nothing is loaded from anywhere but the aggregator itself.
 */

export const INDEX_HTML = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <meta name="referrer" content="no-referrer" />
    <title>Flotilla logs</title>
    <link rel="stylesheet" href="app.css" />
    <script type="module" src="app.js"></script>
  </head>
  <body>
    <aside>
      <h1><a href="./">Flotilla logs</a></h1>
      <table id="services">
        <thead>
          <tr><th>service</th><th class="num">records</th><th>last seen</th></tr>
        </thead>
        <tbody></tbody>
      </table>
      <p id="services-status" class="muted"></p>
    </aside>
    <main>
      <form id="toolbar" autocomplete="off">
        <strong id="title">pick a service</strong>
        <input id="grep" type="search" placeholder="filter (regex)" spellcheck="false" />
        <select id="host"><option value="">all hosts</option></select>
        <button id="pause" type="button">pause</button>
        <button id="older" type="button">older</button>
        <span id="status" class="muted" role="status"></span>
      </form>
      <div id="log" role="log" aria-live="off"></div>
    </main>
  </body>
</html>
`;

const palette = [
  '#e06c75',
  '#98c379',
  '#e5c07b',
  '#61afef',
  '#c678dd',
  '#56b6c2',
  '#f0907a',
  '#b5e890',
  '#ffd580',
  '#8cc8ff',
  '#e0a6f0',
  '#7fe0e8',
];

export const APP_CSS = `
:root { color-scheme: dark; --bg: #16181d; --fg: #d7dae0; --muted: #7d8590; --line: #262a31; }
* { box-sizing: border-box; }
body { margin: 0; height: 100vh; display: flex; background: var(--bg); color: var(--fg);
  font: 13px/1.4 system-ui, sans-serif; }
aside { width: 19rem; flex: none; overflow: auto; border-right: 1px solid var(--line); padding: 0.5rem; }
h1 { font-size: 1rem; margin: 0.25rem 0 0.75rem; }
a { color: inherit; }
table { width: 100%; border-collapse: collapse; }
th { text-align: left; color: var(--muted); font-weight: normal; }
td, th { padding: 0.2rem 0.3rem; white-space: nowrap; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
tbody tr { cursor: pointer; }
tbody tr:hover, tbody tr.current { background: #2b3038; }
main { flex: 1; min-width: 0; display: flex; flex-direction: column; }
#toolbar { display: flex; gap: 0.5rem; align-items: center; padding: 0.5rem;
  border-bottom: 1px solid var(--line); }
#grep { flex: 0 1 22rem; }
#grep.bad { outline: 2px solid #e06c75; }
input, select, button { font: inherit; background: #21252b; color: var(--fg);
  border: 1px solid #3a3f4b; border-radius: 3px; padding: 0.15rem 0.4rem; }
button[aria-pressed="true"] { background: #4b5263; }
.muted { color: var(--muted); }
#status { margin-left: auto; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
#status.error { color: #e06c75; }
#log { flex: 1; overflow: auto; font: 12px/1.35 ui-monospace, monospace; padding: 0.25rem 0.5rem; }
.l { white-space: pre-wrap; word-break: break-all; color: var(--muted); }
.l .m { color: var(--fg); }
.l .m mark { background: #5c4b12; color: inherit; }
.l.stderr .m { color: #f5b7b1; }
.gap { color: var(--muted); font-style: italic; }
${palette.map((c, i) => `.c${i} { color: ${c}; }`).join('\n')}
`;

/** Number of per-container colour classes (.c0 … .cN-1) in APP_CSS; app.js uses the same. */
export const COLOURS = palette.length;
