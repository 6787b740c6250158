/**
 * Query → answer sections, pure: SkyDNS/CoreDNS-etcd semantics over the in-memory ZoneTree.
 * No I/O: names outside every zone come back as `forward`, and an in-zone CNAME pointing out of
 * the zones comes back with `external` for the server to resolve upstream. Choices where SkyDNS
 * and CoreDNS differ are listed in docs/dns.md.
 */
import { hostKind, labelsOf } from './records.js';
import type { Entry, ZoneTree } from './tree.js';

export const T = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  SRV: 33,
  OPT: 41,
  AXFR: 252,
  ANY: 255,
} as const;

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 };

export type RRData =
  | { type: typeof T.A | typeof T.AAAA; address: string }
  | { type: typeof T.CNAME | typeof T.PTR | typeof T.NS; target: string }
  | { type: typeof T.TXT; text: string }
  | { type: typeof T.SRV; priority: number; weight: number; port: number; target: string }
  | { type: typeof T.MX; priority: number; exchange: string }
  | {
      type: typeof T.SOA;
      primary: string;
      admin: string;
      serial: number;
      refresh: number;
      retry: number;
      expiration: number;
      minimum: number;
    };

export interface RR {
  name: string;
  ttl: number;
  data: RRData;
}

export interface Answer {
  rcode: number;
  authoritative: boolean;
  answer: RR[];
  authority: RR[];
  additional: RR[];
  /** The name lies outside every zone: the server forwards the query (or refuses). */
  forward?: boolean;
  /** An in-zone CNAME chain ends outside the zones: resolve this upstream and append. */
  external?: { name: string; type: number };
}

export interface LookupConfig {
  /** Authoritative zones, fully qualified, lower case ("skydns.local."). */
  zones: string[];
  /** TTL for records without their own (--ttl). */
  defaultTtl: number;
  /** SOA minimum and TTL of negative answers (--min-ttl). */
  minTtl: number;
  /** SOA serial: the etcd revision the tree reflects. */
  serial: number;
}

export const MAX_CNAME_CHAIN = 8;
const REVERSE_ZONES = ['in-addr.arpa.', 'ip6.arpa.'];

function isUnder(name: string, zone: string): boolean {
  return name === zone || name.endsWith(`.${zone}`);
}

/** The longest configured zone containing `name` (fully qualified, lower case). */
export function zoneOf(name: string, zones: string[]): string | undefined {
  let best: string | undefined;
  for (const z of zones) if (isUnder(name, z) && (!best || z.length > best.length)) best = z;
  return best;
}

/**
 * SkyDNS's group rule (msg.Group): the shortest key(s) carrying a group select it; then only
 * records of that group or with no group are returned. Disagreeing groups at that shortest
 * level cancel the filter.
 */
export function applyGroups(entries: Entry[]): Entry[] {
  if (entries.length === 0) return entries;
  const depth = (e: Entry) => e.key.split('/').length;
  let group = entries[0]!.record.group;
  let slashes = depth(entries[0]!);
  const depths = entries.map(depth);
  for (let i = 0; i < entries.length; i++) {
    const d = depths[i]!;
    if (d < slashes) {
      if (entries[i]!.record.group === '') break;
      slashes = d;
      group = entries[i]!.record.group;
    }
  }
  if (group === '') return entries;
  const out: Entry[] = [];
  for (let i = 0; i < entries.length; i++) {
    const g = entries[i]!.record.group;
    if (g === '') out.push(entries[i]!);
    else if (depths[i] === slashes && g !== group) return entries;
    else if (g === group) out.push(entries[i]!);
  }
  return out;
}

/** TTL of one record: its own ttl (else the default), capped by what is left of its lease. */
export function entryTtl(e: Entry, defaultTtl: number): number {
  const own = e.record.ttl > 0 ? e.record.ttl : defaultTtl;
  return e.leaseTtl === undefined ? own : Math.max(0, Math.min(own, e.leaseTtl));
}

/** SRV weights as SkyDNS computes them: each record's share (percent) of its priority's total; weight 0 counts as 100. */
export function srvWeights(entries: Entry[]): number[] {
  const totals = new Map<number, number>();
  for (const e of entries) {
    const w = e.record.weight || 100;
    totals.set(e.record.priority, (totals.get(e.record.priority) ?? 0) + w);
  }
  return entries.map((e) =>
    Math.floor((100 / totals.get(e.record.priority)!) * (e.record.weight || 100)),
  );
}

/** Name an SRV/MX target gets for an address record: its own name minus `targetstrip` labels. */
export function targetName(e: Entry): string {
  const labels = labelsOf(e.name).slice(e.record.targetstrip);
  return labels.length === 0 ? '.' : `${labels.join('.')}.`;
}

function soa(zone: string, cfg: LookupConfig): RR {
  return {
    name: zone,
    ttl: cfg.minTtl,
    data: {
      type: T.SOA,
      primary: `ns.dns.${zone}`,
      admin: `hostmaster.${zone}`,
      serial: cfg.serial >>> 0,
      refresh: 28800,
      retry: 7200,
      expiration: 604800,
      minimum: cfg.minTtl,
    },
  };
}

function withDot(name: string): string {
  return name.endsWith('.') ? name : `${name}.`;
}

interface Chase {
  rrs: RR[];
  external?: { name: string; type: number };
  ok: boolean;
}

/**
 * Address records for `name` (A or AAAA), following in-zone CNAMEs. Address records win over
 * CNAMEs at the same name; of several CNAME candidates the first by key is used. A loop or a
 * chain longer than MAX_CNAME_CHAIN makes the chain unusable (ok=false).
 */
function addresses(
  tree: ZoneTree,
  owner: string,
  lname: string,
  qtype: number,
  cfg: LookupConfig,
  seen: Set<string>,
): Chase {
  const found = tree.find(labelsOf(lname));
  if (!found) return { rrs: [], ok: true };
  const entries = applyGroups(found);
  const want = qtype === T.A ? 'ipv4' : 'ipv6';
  const rrs: RR[] = [];
  for (const e of entries) {
    if (hostKind(e.record.host) === want)
      rrs.push({
        name: owner,
        ttl: entryTtl(e, cfg.defaultTtl),
        data: { type: qtype as typeof T.A, address: e.record.host },
      });
  }
  if (rrs.length > 0) return { rrs, ok: true };
  const alias = entries.find((e) => hostKind(e.record.host) === 'name' && e.record.host !== lname);
  if (!alias) return { rrs: [], ok: true };
  const target = alias.record.host;
  // `seen` holds the name we started from plus every target so far: this would be CNAME number
  // seen.size, and a chain of up to MAX_CNAME_CHAIN is followed (dns.md: "longer than 8" drops).
  if (seen.has(target) || seen.size > MAX_CNAME_CHAIN) return { rrs: [], ok: false };
  seen.add(target);
  const cname: RR = {
    name: owner,
    ttl: entryTtl(alias, cfg.defaultTtl),
    data: { type: T.CNAME, target },
  };
  if (!zoneOf(target, cfg.zones))
    return { rrs: [cname], external: { name: target, type: qtype }, ok: true };
  const rest = addresses(tree, target, target, qtype, cfg, seen);
  if (!rest.ok) return rest;
  return {
    rrs: [cname, ...rest.rrs],
    ok: true,
    ...(rest.external ? { external: rest.external } : {}),
  };
}

/** A and AAAA glue for an in-zone target name. */
function glue(tree: ZoneTree, target: string, cfg: LookupConfig): RR[] {
  if (!zoneOf(target, cfg.zones)) return [];
  const out: RR[] = [];
  for (const t of [T.A, T.AAAA]) {
    const c = addresses(tree, target, target, t, cfg, new Set([target]));
    if (c.ok) out.push(...c.rrs);
  }
  return out;
}

/** SRV/MX target of an entry plus the glue that goes with it. */
function targetOf(tree: ZoneTree, e: Entry, cfg: LookupConfig): { target: string; glue: RR[] } {
  const kind = hostKind(e.record.host);
  if (kind === 'name') return { target: e.record.host, glue: glue(tree, e.record.host, cfg) };
  const target = targetName(e);
  const ttl = entryTtl(e, cfg.defaultTtl);
  return {
    target,
    glue: [
      {
        name: target,
        ttl,
        data: { type: kind === 'ipv4' ? T.A : T.AAAA, address: e.record.host },
      },
    ],
  };
}

function dedupe(rrs: RR[]): RR[] {
  const seen = new Set<string>();
  return rrs.filter((r) => {
    const k = `${r.name.toLowerCase()}|${JSON.stringify(r.data)}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

function minTtl(rrs: RR[]): RR[] {
  if (rrs.length < 2) return rrs;
  const m = Math.min(...rrs.map((r) => r.ttl));
  return rrs.map((r) => (r.ttl === m ? r : { ...r, ttl: m }));
}

/**
 * Answers one question from the tree. `qname` keeps the case it was asked in (it becomes the
 * owner name of answers); matching is case-insensitive.
 */
export function lookup(tree: ZoneTree, qname: string, qtype: number, cfg: LookupConfig): Answer {
  const owner = withDot(qname);
  const lname = owner.toLowerCase();
  const empty = (rcode: number): Answer => ({
    rcode,
    authoritative: false,
    answer: [],
    authority: [],
    additional: [],
  });
  let zone = zoneOf(lname, cfg.zones);
  if (!zone) {
    const rev = REVERSE_ZONES.find((z) => isUnder(lname, z));
    if (rev && tree.find(labelsOf(lname))) zone = rev;
    else return { ...empty(RCODE.NOERROR), forward: true };
  }
  if (qtype === T.ANY || qtype === T.AXFR) return empty(RCODE.REFUSED);
  const positive = (answer: RR[], additional: RR[]): Answer => ({
    rcode: RCODE.NOERROR,
    authoritative: true,
    answer: minTtl(dedupe(answer)),
    authority: [],
    additional: dedupe(additional),
  });
  const negative = (rcode: number): Answer => ({
    rcode,
    authoritative: true,
    answer: [],
    authority: [soa(zone, cfg)],
    additional: [],
  });
  const apex = lname === zone;
  if (apex && qtype === T.SOA)
    return { ...negative(RCODE.NOERROR), answer: [soa(zone, cfg)], authority: [] };
  if (apex && qtype === T.NS) {
    const servers = (tree.find(labelsOf(`ns.dns.${zone}`)) ?? []).filter(
      (e) => hostKind(e.record.host) === 'ipv4' || hostKind(e.record.host) === 'ipv6',
    );
    const answer: RR[] = [];
    const additional: RR[] = [];
    for (const e of servers) {
      const t = targetOf(tree, e, cfg);
      answer.push({
        name: owner,
        ttl: entryTtl(e, cfg.defaultTtl),
        data: { type: T.NS, target: t.target },
      });
      additional.push(...t.glue);
    }
    if (answer.length === 0)
      answer.push({
        name: owner,
        ttl: cfg.defaultTtl,
        data: { type: T.NS, target: `ns.dns.${zone}` },
      });
    return positive(answer, additional);
  }
  const found = tree.find(labelsOf(lname));
  if (!found) return negative(apex ? RCODE.NOERROR : RCODE.NXDOMAIN);
  const entries = applyGroups(found);
  let answer: RR[] = [];
  const additional: RR[] = [];
  let external: Answer['external'];
  switch (qtype) {
    case T.A:
    case T.AAAA: {
      const c = addresses(tree, owner, lname, qtype, cfg, new Set([lname]));
      if (c.ok) {
        answer = c.rrs;
        external = c.external;
      }
      break;
    }
    case T.CNAME: {
      const alias = entries.find((e) => hostKind(e.record.host) === 'name');
      if (alias)
        answer.push({
          name: owner,
          ttl: entryTtl(alias, cfg.defaultTtl),
          data: { type: T.CNAME, target: alias.record.host },
        });
      break;
    }
    case T.TXT:
      for (const e of entries)
        if (e.record.text !== '')
          answer.push({
            name: owner,
            ttl: entryTtl(e, cfg.defaultTtl),
            data: { type: T.TXT, text: e.record.text },
          });
      break;
    case T.SRV: {
      const withHost = entries.filter((e) => e.record.host !== '');
      const weights = srvWeights(withHost);
      withHost.forEach((e, i) => {
        const t = targetOf(tree, e, cfg);
        answer.push({
          name: owner,
          ttl: entryTtl(e, cfg.defaultTtl),
          data: {
            type: T.SRV,
            priority: e.record.priority,
            weight: weights[i]!,
            port: e.record.port,
            target: t.target,
          },
        });
        additional.push(...t.glue);
      });
      break;
    }
    case T.MX:
      for (const e of entries) {
        if (!e.record.mail || e.record.host === '') continue;
        const t = targetOf(tree, e, cfg);
        answer.push({
          name: owner,
          ttl: entryTtl(e, cfg.defaultTtl),
          data: { type: T.MX, priority: e.record.priority, exchange: t.target },
        });
        additional.push(...t.glue);
      }
      break;
    case T.PTR:
      for (const e of entries)
        if (hostKind(e.record.host) === 'name')
          answer.push({
            name: owner,
            ttl: entryTtl(e, cfg.defaultTtl),
            data: { type: T.PTR, target: e.record.host },
          });
      break;
    default:
      break;
  }
  if (answer.length === 0 && !external) return negative(RCODE.NOERROR);
  return { ...positive(answer, additional), ...(external ? { external } : {}) };
}
