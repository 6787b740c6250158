/**
 * Forward-protocol shared-key authentication (pure). The server opens with HELO carrying a
 * nonce; the client answers PING with sha512(salt + client_host + nonce + key); the server
 * checks it and answers PONG with sha512(salt + server_host + nonce + key), which the client
 * checks in turn, so each side proves it knows the key without sending it. Username/password
 * auth is not supported (empty `auth` in HELO).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { encodeValue } from './codec.js';

function digest(salt: string, host: string, nonce: Buffer, key: string): string {
  return createHash('sha512').update(salt).update(host).update(nonce).update(key).digest('hex');
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function asBuffer(v: unknown): Buffer | undefined {
  if (Buffer.isBuffer(v)) return v;
  if (v instanceof Uint8Array) return Buffer.from(v);
  if (typeof v === 'string') return Buffer.from(v, 'binary');
  return undefined;
}

export function newNonce(): Buffer {
  return randomBytes(16);
}

export function encodeHelo(nonce: Buffer): Buffer {
  return encodeValue(['HELO', { nonce, auth: '', keepalive: true }]);
}

/** Nonce from a HELO body (`[options]`). */
export function parseHelo(body: unknown[]): Buffer {
  const opts = body[0] as { nonce?: unknown } | undefined;
  const nonce = asBuffer(opts?.nonce);
  if (!nonce) throw new Error('HELO without nonce');
  return nonce;
}

export function encodePing(nonce: Buffer, clientHost: string, key: string, salt: string): Buffer {
  return encodeValue(['PING', clientHost, salt, digest(salt, clientHost, nonce, key), '', '']);
}

export interface PingCheck {
  ok: boolean;
  reason: string;
  salt: string;
  clientHost: string;
}

/** Verifies a PING body (`[host, salt, digest, user, password]`) against our nonce and key. */
export function checkPing(body: unknown[], nonce: Buffer, key: string): PingCheck {
  const [clientHost, salt, got] = body;
  if (typeof clientHost !== 'string' || typeof salt !== 'string' || typeof got !== 'string')
    return { ok: false, reason: 'malformed PING', salt: '', clientHost: '' };
  const ok = sameText(got, digest(salt, clientHost, nonce, key));
  return { ok, reason: ok ? '' : 'shared key mismatch', salt, clientHost };
}

export function encodePong(
  check: PingCheck,
  serverHost: string,
  nonce: Buffer,
  key: string,
): Buffer {
  return encodeValue([
    'PONG',
    check.ok,
    check.reason,
    serverHost,
    check.ok ? digest(check.salt, serverHost, nonce, key) : '',
  ]);
}

/** Verifies a PONG body (`[ok, reason, host, digest]`); returns '' when the server is authentic. */
export function checkPong(body: unknown[], nonce: Buffer, key: string, salt: string): string {
  const [ok, reason, serverHost, got] = body;
  if (ok !== true) return `server refused: ${typeof reason === 'string' ? reason : 'no reason'}`;
  if (typeof serverHost !== 'string' || typeof got !== 'string') return 'malformed PONG';
  return sameText(got, digest(salt, serverHost, nonce, key)) ? '' : 'server failed shared key';
}
