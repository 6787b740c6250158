/**
 * The in-memory zone: a tree of name labels (TLD first) holding the records loaded from etcd.
 * Pure data structure; the store keeps it exact from a snapshot plus a watch. A lookup returns
 * every record in the subtree under the name — never a sibling that merely shares a prefix,
 * since matching is by whole labels — and `*` / `any` in a query match one label.
 */
import { hostKind, keyLabels, parseRecord, RecordError, type ServiceRecord } from './records.js';

export interface Entry {
  /** etcd key, used for ordering and SkyDNS group semantics. */
  key: string;
  /** Fully qualified name of the record, lower case, e.g. "x1.web.skydns.local.". */
  name: string;
  record: ServiceRecord;
  /** Seconds left on the record's etcd lease when it was loaded; undefined without a lease. */
  leaseTtl?: number | undefined;
}

class Node {
  readonly children = new Map<string, Node>();
  entry: Entry | undefined;
  /** Entries in this subtree, the node's own included. */
  count = 0;
}

export function isWildcard(label: string): boolean {
  return label === '*' || label === 'any';
}

export class ZoneTree {
  private readonly root = new Node();

  get size(): number {
    return this.root.count;
  }

  /** Adds or replaces the entry at `labels` (leftmost first). */
  set(labels: string[], entry: Entry): void {
    const path = this.walkCreate(labels);
    const node = path[path.length - 1]!;
    const added = node.entry === undefined ? 1 : 0;
    node.entry = entry;
    if (added) for (const n of path) n.count++;
  }

  /** Removes the entry at `labels`; returns whether there was one. Empty branches are pruned. */
  delete(labels: string[]): boolean {
    const path: Node[] = [this.root];
    let node = this.root;
    for (let i = labels.length - 1; i >= 0; i--) {
      const next = node.children.get(labels[i]!);
      if (!next) return false;
      path.push(next);
      node = next;
    }
    if (!node.entry) return false;
    node.entry = undefined;
    for (const n of path) n.count--;
    for (let i = path.length - 1; i > 0; i--) {
      if (path[i]!.count > 0) break;
      path[i - 1]!.children.delete(labels[labels.length - i]!);
    }
    return true;
  }

  private walkCreate(labels: string[]): Node[] {
    const path: Node[] = [this.root];
    let node = this.root;
    for (let i = labels.length - 1; i >= 0; i--) {
      let next = node.children.get(labels[i]!);
      if (!next) {
        next = new Node();
        node.children.set(labels[i]!, next);
      }
      path.push(next);
      node = next;
    }
    return path;
  }

  clear(): void {
    this.root.children.clear();
    this.root.entry = undefined;
    this.root.count = 0;
  }

  /** The entry stored exactly at `labels`, without subtree or wildcards. */
  get(labels: string[]): Entry | undefined {
    let node: Node | undefined = this.root;
    for (let i = labels.length - 1; i >= 0 && node; i--) node = node.children.get(labels[i]!);
    return node?.entry;
  }

  /**
   * Entries under `labels` (leftmost first), sorted by key; null when no such name exists
   * (NXDOMAIN). An empty non-terminal (a name with records only below it) returns its subtree.
   */
  find(labels: string[]): Entry[] | null {
    let nodes: Node[] = [this.root];
    for (let i = labels.length - 1; i >= 0 && nodes.length > 0; i--) {
      const label = labels[i]!;
      const next: Node[] = [];
      for (const n of nodes) {
        if (isWildcard(label)) next.push(...n.children.values());
        else {
          const c = n.children.get(label);
          if (c) next.push(c);
        }
      }
      nodes = next;
    }
    nodes = nodes.filter((n) => n.count > 0);
    if (nodes.length === 0) return null;
    // An alias (a name-host record) exactly at the queried name answers for that name alone, as
    // a CNAME owner holds no other data: `dnsctl alias web v2.web` with instances below web.
    const own = nodes.length === 1 && !labels.some(isWildcard) ? nodes[0]!.entry : undefined;
    if (own && hostKind(own.record.host) === 'name') return [own];
    const out: Entry[] = [];
    const collect = (n: Node) => {
      if (n.entry) out.push(n.entry);
      for (const c of n.children.values()) collect(c);
    };
    for (const n of nodes) collect(n);
    out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return out;
  }
}

/** Builds the entry for an etcd key/value under `prefix`; throws RecordError naming the key. */
export function entryFrom(
  key: string,
  value: string,
  prefix: string,
  leaseTtl?: number,
): { labels: string[]; entry: Entry } {
  const labels = keyLabels(key, prefix);
  if (labels === null || labels.length === 0)
    throw new RecordError(`key ${key}: not a record key under ${prefix}/`);
  const record = parseRecord(key, value);
  return { labels, entry: { key, name: `${labels.join('.')}.`, record, leaseTtl } };
}
