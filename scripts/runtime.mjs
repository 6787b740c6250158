// The scripts' guard that they run on the project's Node.js 24 (node_modules/.bin/node, which npm
// puts first on PATH for every npm script), not on an older machine-wide one.
export function requireRuntime() {
  const major = Number(process.versions.node.split('.')[0]);
  if (major >= 24) return;
  process.stderr.write(
    `${process.argv[1]}: needs Node.js 24, this is ${process.version} (${process.execPath}); ` +
      'run it through npm (npm test, npm run bench, npm start) or with node_modules/.bin/node\n',
  );
  process.exit(1);
}
