/** Test helper: a ZoneTree from `{ key: json }` (unit tests of lookup, cache and server). */
import { entryFrom, ZoneTree } from './tree.js';

export function treeOf(
  records: Record<string, string | object>,
  prefix = '/skydns',
  leases: Record<string, number> = {},
): ZoneTree {
  const tree = new ZoneTree();
  for (const [key, value] of Object.entries(records)) {
    const { labels, entry } = entryFrom(
      key,
      typeof value === 'string' ? value : JSON.stringify(value),
      prefix,
      leases[key],
    );
    tree.set(labels, entry);
  }
  return tree;
}
