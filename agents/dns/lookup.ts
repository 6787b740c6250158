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
  /**
   * An in-zone CNAME chain ends outside the zones: resolve `name`/`type` upstream and append
   * what comes back. When that is impossible (no forwarding for this client) or yields nothing,
   * the chain dangles and the server answers `nodata` instead, as SkyDNS and CoreDNS do.
   */
  external?: { name: string; type: number; nodata: Answer };
  /**
   * SRV/MX/NS targets whose CNAME chain leaves the zones: the in-zone part of the chain, and the
   * name/type to resolve upstream. The server appends chain + upstream addresses to additional
   * for clients that may forward (CoreDNS resolves such targets too), else leaves them out.
   */
  externalGlue?: ExternalGlue[];
}

export interface ExternalGlue {
  chain: RR[];
  name: string;
  type: number;
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
  /** Bounds of a lease's remaining time used as a TTL (--min-lease-ttl, --max-lease-ttl; CoreDNS's 30 and 86400 by default). */
  minLeaseTtl?: number;
  maxLeaseTtl?: number;
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

export const DEFAULT_MIN_LEASE_TTL = 30;
export const DEFAULT_MAX_LEASE_TTL = 86400;

/**
 * TTL of one record, as CoreDNS's etcd plugin computes it: the time left on its etcd lease,
 * clamped to [minLeaseTtl, maxLeaseTtl], and the record's own `ttl` when smaller. Without a
 * lease: its own ttl, else the default.
 */
export function entryTtl(
  e: Entry,
  cfg: Pick<LookupConfig, 'defaultTtl' | 'minLeaseTtl' | 'maxLeaseTtl'>,
): number {
  const own = e.record.ttl;
  if (e.leaseTtl === undefined) return own > 0 ? own : cfg.defaultTtl;
  const lo = cfg.minLeaseTtl ?? DEFAULT_MIN_LEASE_TTL;
  const hi = cfg.maxLeaseTtl ?? DEFAULT_MAX_LEASE_TTL;
  const lease = Math.min(Math.max(e.leaseTtl, lo), hi);
  return own > 0 ? Math.min(own, lease) : lease;
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

/**
 * The records a name's query looks at: its subtree, except for a zone apex, which answers from
 * `<zone path>/dns/apex` only (CoreDNS), never the whole zone. [] for an apex without such
 * records (NODATA: the zone exists); null when nothing is at or below the name (NXDOMAIN).
 */
function entriesAt(tree: ZoneTree, lname: string, cfg: LookupConfig): Entry[] | null {
  const found = cfg.zones.includes(lname)
    ? (tree.find(labelsOf(`apex.dns.${lname}`)) ?? [])
    : tree.find(labelsOf(lname));
  return found && applyGroups(found);
}

/**
 * The CNAME a name makes: none when any of its records has an address (addresses win), else
 * the first record by key whose host is another name. One CNAME per name, as DNS requires.
 */
function aliasOf(entries: Entry[], lname: string): Entry | undefined {
  let alias: Entry | undefined;
  for (const e of entries) {
    const kind = hostKind(e.record.host);
    if (kind === 'ipv4' || kind === 'ipv6') return undefined;
    if (!alias && kind === 'name' && e.record.host !== lname) alias = e;
  }
  return alias;
}

/** The name holds only a record written by `dnsctl alias` (tree.find returns it alone). */
function isAlias(entries: Entry[]): boolean {
  return entries.length === 1 && entries[0]!.record.alias;
}

interface Section {
  answer: RR[];
  additional: RR[];
  /** Glue to complete upstream (see Answer.externalGlue). */
  pending?: ExternalGlue[];
}

/**
 * The records of `qtype` that a name's own entries make, without following a CNAME: A/AAAA
 * from addresses of that family, TXT from `text`, SRV from every record with a host, MX from
 * `mail` records, PTR from name hosts. SRV and MX bring their targets' addresses as glue.
 */
function direct(
  tree: ZoneTree,
  owner: string,
  entries: Entry[],
  qtype: number,
  cfg: LookupConfig,
): Section {
  const answer: RR[] = [];
  const additional: RR[] = [];
  const pending: ExternalGlue[] = [];
  const rr = (e: Entry, data: RRData): RR => ({ name: owner, ttl: entryTtl(e, cfg), data });
  switch (qtype) {
    case T.A:
    case T.AAAA: {
      const want = qtype === T.A ? 'ipv4' : 'ipv6';
      for (const e of entries)
        if (hostKind(e.record.host) === want)
          answer.push(rr(e, { type: qtype, address: e.record.host }));
      break;
    }
    case T.TXT:
      for (const e of entries)
        if (e.record.text !== '') answer.push(rr(e, { type: T.TXT, text: e.record.text }));
      break;
    case T.SRV: {
      const withHost = entries.filter((e) => e.record.host !== '');
      const weights = srvWeights(withHost);
      withHost.forEach((e, i) => {
        const t = targetOf(tree, e, cfg);
        const { priority, port } = e.record;
        answer.push(rr(e, { type: T.SRV, priority, weight: weights[i]!, port, target: t.target }));
        additional.push(...t.glue);
        pending.push(...t.pending);
      });
      break;
    }
    case T.MX:
      for (const e of entries) {
        if (!e.record.mail || e.record.host === '') continue;
        const t = targetOf(tree, e, cfg);
        answer.push(rr(e, { type: T.MX, priority: e.record.priority, exchange: t.target }));
        additional.push(...t.glue);
        pending.push(...t.pending);
      }
      break;
    case T.PTR:
      for (const e of entries)
        if (hostKind(e.record.host) === 'name')
          answer.push(rr(e, { type: T.PTR, target: e.record.host }));
      break;
    default:
      break;
  }
  return pending.length > 0 ? { answer, additional, pending } : { answer, additional };
}

interface Chase extends Section {
  /** The chain leaves the zones here: the rest comes from upstream. */
  external?: { name: string; type: number };
}

/**
 * The answer to `qtype` at `lname`, following CNAMEs inside the zones for every type (CoreDNS
 * does so for A, AAAA and TXT; a name record already makes the SRV/PTR itself). A chain that
 * ends in nothing — an unknown name, no record of the type, a loop, more than MAX_CNAME_CHAIN
 * links — is dropped whole, so the caller answers NODATA as both references do. null: NXDOMAIN.
 */
function chase(
  tree: ZoneTree,
  owner: string,
  lname: string,
  qtype: number,
  cfg: LookupConfig,
  seen: Set<string>,
): Chase | null {
  const entries = entriesAt(tree, lname, cfg);
  if (!entries) return null;
  const none: Chase = { answer: [], additional: [] };
  // A `dnsctl alias` record is a plain CNAME for every type: SRV follows it to the target's
  // instances instead of making one SRV (port 0) of its own as a SkyDNS name record does.
  const own = isAlias(entries) ? none : direct(tree, owner, entries, qtype, cfg);
  if (own.answer.length > 0) return own;
  const alias = aliasOf(entries, lname);
  if (!alias) return none;
  const target = alias.record.host;
  // `seen` holds the name we started from plus every target so far: this would be CNAME number
  // seen.size, and a chain of up to MAX_CNAME_CHAIN is followed (dns.md: "longer than 8" drops).
  if (seen.has(target) || seen.size > MAX_CNAME_CHAIN) return none;
  seen.add(target);
  const cname: RR = { name: owner, ttl: entryTtl(alias, cfg), data: { type: T.CNAME, target } };
  if (!zoneOf(target, cfg.zones))
    return { answer: [cname], additional: [], external: { name: target, type: qtype } };
  const rest = chase(tree, target, target, qtype, cfg, seen);
  if (!rest || (rest.answer.length === 0 && !rest.external)) return none;
  return { ...rest, answer: [cname, ...rest.answer] };
}

interface Glue {
  glue: RR[];
  /** The chain leaves the zones: complete it upstream. */
  pending: ExternalGlue[];
}

/**
 * A and AAAA glue for a target name inside the zones: a CNAME chain and the addresses at its
 * end. A chain that ends outside the zones is returned as pending, for the server to complete.
 */
function glue(tree: ZoneTree, target: string, cfg: LookupConfig): Glue {
  const out: Glue = { glue: [], pending: [] };
  if (!zoneOf(target, cfg.zones)) return out;
  for (const t of [T.A, T.AAAA]) {
    const c = chase(tree, target, target, t, cfg, new Set([target]));
    if (c?.external) out.pending.push({ chain: c.answer, name: c.external.name, type: t });
    else if (c) out.glue.push(...c.answer);
  }
  return out;
}

/** SRV/MX target of an entry plus the glue that goes with it. */
function targetOf(tree: ZoneTree, e: Entry, cfg: LookupConfig): Glue & { target: string } {
  const kind = hostKind(e.record.host);
  if (kind === 'name') return { target: e.record.host, ...glue(tree, e.record.host, cfg) };
  const target = targetName(e);
  const ttl = entryTtl(e, cfg);
  return {
    target,
    pending: [],
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

/**
 * `a` with its external glue completed: `found[i]` is what upstream answered for
 * `a.externalGlue[i]`; a target whose upstream answer has no record of the asked type gets no
 * glue (as an in-zone chain that dangles), the others get the chain and the records.
 */
export function withExternalGlue(a: Answer, found: RR[][]): Answer {
  const extra: RR[] = [];
  (a.externalGlue ?? []).forEach((g, i) => {
    const rrs = found[i] ?? [];
    if (rrs.some((r) => r.data.type === g.type)) extra.push(...g.chain, ...rrs);
  });
  const { externalGlue: _done, ...rest } = a;
  return { ...rest, additional: dedupe([...a.additional, ...extra]) };
}

function dedupePending(list: ExternalGlue[]): ExternalGlue[] {
  const seen = new Set<string>();
  return list.filter((g) => {
    const k = `${g.name.toLowerCase()}|${g.type}`;
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
      answer.push({ name: owner, ttl: entryTtl(e, cfg), data: { type: T.NS, target: t.target } });
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
  if (qtype === T.CNAME) {
    const entries = entriesAt(tree, lname, cfg);
    if (!entries) return negative(RCODE.NXDOMAIN);
    const alias = aliasOf(entries, lname);
    if (!alias) return negative(RCODE.NOERROR);
    const data: RRData = { type: T.CNAME, target: alias.record.host };
    return positive([{ name: owner, ttl: entryTtl(alias, cfg), data }], []);
  }
  const c = chase(tree, owner, lname, qtype, cfg, new Set([lname]));
  if (!c) return negative(RCODE.NXDOMAIN);
  if (c.answer.length === 0) return negative(RCODE.NOERROR);
  const a = positive(c.answer, c.additional);
  if (c.external) return { ...a, external: { ...c.external, nodata: negative(RCODE.NOERROR) } };
  return c.pending ? { ...a, externalGlue: dedupePending(c.pending) } : a;
}
