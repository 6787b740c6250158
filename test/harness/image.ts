/**
 * The test image `flotilla-test`, built without a registry: busybox-static (sh, httpd, wget, nc,
 * ping, …, one symlink per applet; note busybox 1.35's `wget -T` segfaults: use `timeout 5 wget`) plus `dig` and the shared libraries `ldd` lists for it,
 * packed with tar-stream and imported into a host's dockerd.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, realpathSync, statSync } from 'node:fs';
import tar from 'tar-stream';
import type Docker from 'dockerode';

export const TEST_IMAGE = 'flotilla-test:latest';

let cached: Promise<Buffer> | undefined;

function libsOf(binary: string): string[] {
  const out = execFileSync('ldd', [binary], { encoding: 'utf8' });
  const libs: string[] = [];
  for (const line of out.split('\n')) {
    const m = /=>\s+(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m) libs.push(m[1]!);
  }
  return libs;
}

async function buildRootfs(): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => {
    chunks.push(c as Buffer);
  });
  const done = new Promise<void>((resolve, reject) => {
    pack.on('end', resolve);
    pack.on('error', reject);
  });
  const dirs = [
    'bin',
    'sbin',
    'usr',
    'usr/bin',
    'usr/sbin',
    'lib',
    'lib64',
    'etc',
    'proc',
    'sys',
    'dev',
    'root',
    'var',
    'var/www',
    'run',
  ];
  for (const d of dirs) pack.entry({ name: d, type: 'directory', mode: 0o755 });
  pack.entry({ name: 'tmp', type: 'directory', mode: 0o1777 });
  pack.entry({ name: 'bin/busybox', mode: 0o755 }, readFileSync('/bin/busybox'));
  const applets = execFileSync('/bin/busybox', ['--list'], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean);
  for (const a of applets)
    if (a !== 'busybox') pack.entry({ name: `bin/${a}`, type: 'symlink', linkname: 'busybox' });
  const files = new Set<string>(['/usr/bin/dig', ...libsOf('/usr/bin/dig')]);
  const seenDirs = new Set(dirs);
  for (const f of files) {
    const parts = f.slice(1).split('/');
    for (let i = 1; i < parts.length; i++) {
      const d = parts.slice(0, i).join('/');
      if (!seenDirs.has(d)) {
        seenDirs.add(d);
        pack.entry({ name: d, type: 'directory', mode: 0o755 });
      }
    }
    const real = realpathSync(f);
    pack.entry({ name: f.slice(1), mode: statSync(real).mode & 0o777 }, readFileSync(real));
  }
  pack.entry(
    { name: 'etc/passwd' },
    'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n',
  );
  pack.entry({ name: 'etc/group' }, 'root:x:0:\nnogroup:x:65534:\n');
  pack.entry({ name: 'etc/nsswitch.conf' }, 'hosts: files dns\n');
  pack.entry({ name: 'var/www/index.html' }, 'hello from flotilla-test\n');
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** The rootfs tarball, built once per process. */
export function testImageTar(): Promise<Buffer> {
  cached ??= buildRootfs();
  return cached;
}

/** Imports the test image into `docker` unless it is there already. */
export async function ensureTestImage(docker: Docker): Promise<void> {
  try {
    await docker.getImage(TEST_IMAGE).inspect();
    return;
  } catch {
    /* not there yet */
  }
  const tarball = await testImageTar();
  const { Readable } = await import('node:stream');
  const stream = await docker.importImage(Readable.from([tarball]) as unknown as string, {
    repo: 'flotilla-test',
    tag: 'latest',
  });
  await new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(stream, (err: Error | null) => (err ? reject(err) : resolve()));
  });
  await docker.getImage(TEST_IMAGE).inspect();
}
