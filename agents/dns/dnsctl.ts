/**
 * dnsctl's etcd side: `ls` reads every record under a name (and the withdrawn ones, see
 * instances.ts) with the time left on each lease; `alias` / `unalias` write and delete a
 * CNAME-style SkyDNS record at a name. The rows and formats are pure (instances.ts); this file
 * is the I/O.
 */
import type { Etcd3 } from 'etcd3';
import { ConfigError, UsageError } from '../common/errors.js';
import {
  aliasRecord,
  instanceRow,
  rowsUnder,
  WITHDRAWN_PREFIX,
  type InstanceRow,
} from './instances.js';
import { fqdn, nameToKey, RecordError } from './records.js';

export function keyOfName(name: string, prefix: string, what: string): string {
  try {
    return nameToKey(name, prefix);
  } catch (err) {
    if (err instanceof RecordError) throw new UsageError(`${what}: ${err.message}`);
    throw err;
  }
}

async function leaseTtl(client: Etcd3, id: string, cache: Map<string, number | null>) {
  if (id === '0' || id === '') return null;
  if (!cache.has(id)) {
    try {
      const r = await client.leaseClient.leaseTimeToLive({ ID: id });
      cache.set(id, Number(r.TTL) >= 0 ? Number(r.TTL) : null);
    } catch {
      cache.set(id, null);
    }
  }
  return cache.get(id)!;
}

/**
 * Every instance at or below `name` (the whole prefix without one), in DNS or withdrawn.
 * Records that are not valid JSON records are returned as `bad` (key and reason), not thrown.
 */
export async function listInstances(
  client: Etcd3,
  prefix: string,
  name: string | undefined,
): Promise<{ rows: InstanceRow[]; bad: string[] }> {
  const base = name ? keyOfName(name, prefix, 'NAME') : prefix.replace(/\/+$/, '');
  const rows: InstanceRow[] = [];
  const bad: string[] = [];
  const leases = new Map<string, number | null>();
  for (const p of [base, `${WITHDRAWN_PREFIX}${base}`]) {
    const res = await client.getAll().prefix(p).exec();
    for (const kv of res.kvs) {
      const key = kv.key.toString();
      try {
        const ttl = await leaseTtl(client, String(kv.lease), leases);
        rows.push(instanceRow(key, kv.value.toString(), prefix, ttl));
      } catch (err) {
        bad.push((err as Error).message);
      }
    }
  }
  return { rows: rowsUnder(rows, name), bad };
}

/**
 * Makes NAME answer what TARGET answers: a record `{"host":"TARGET.","ttl":…,"alias":true}` at
 * NAME's key, no lease. Refuses to overwrite an instance's record. Returns the key written.
 */
export async function setAlias(
  client: Etcd3,
  prefix: string,
  name: string,
  target: string,
  ttl: number,
): Promise<string> {
  const key = keyOfName(name, prefix, 'NAME');
  keyOfName(target, prefix, 'TARGET');
  if (fqdn(name) === fqdn(target)) throw new UsageError(`TARGET: ${fqdn(target)} is NAME itself`);
  const cur = await client.get(key).string();
  if (cur !== null && !isAlias(cur))
    throw new ConfigError(
      `${key} holds a record that is not an alias (${cur}); alias a name without its own record`,
    );
  await client.put(key).value(aliasRecord(target, ttl));
  return key;
}

/** Removes NAME's alias; false when NAME has none. Refuses to delete an instance's record. */
export async function removeAlias(client: Etcd3, prefix: string, name: string): Promise<boolean> {
  const key = keyOfName(name, prefix, 'NAME');
  const cur = await client.get(key).string();
  if (cur === null) return false;
  if (!isAlias(cur))
    throw new ConfigError(`${key} holds a record that is not an alias (${cur}); not deleting it`);
  await client.delete().key(key);
  return true;
}

function isAlias(value: string): boolean {
  try {
    return (JSON.parse(value) as { alias?: unknown }).alias === true;
  } catch {
    return false;
  }
}
