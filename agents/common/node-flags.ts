/**
 * Node/V8 flags a command runs with, passed by every launcher of it: the release's bin/
 * wrappers (which the units run), the checkout's dist/bin wrappers, and the tests' and bench's
 * helpers, so what is measured is what is deployed.
 *
 * overlayd: `--max-semi-space-size=1` caps V8's young generation at 1 MiB per semi-space
 * (default: up to 16 MiB, grown during the cold start's burst of allocations and then kept).
 * With 1000 peers it lowers RSS by ~25 MiB and costs no CPU (docs/runtime.md, measured).
 * `--no-opt --no-maglev` leave V8's optimising compilers (TurboFan, Maglev) unused: the
 * interpreter and the Sparkplug baseline compiler run overlayd's short event handlers, and the
 * ~8 MiB of the node binary's compiler code that JIT-compiling the cold start faults in, with
 * the compilers' zone memory, stay out of RSS (81–88 → 69–74 MiB with 1000 peers, same
 * cold-start CPU). They cost ~20 ms of CPU at start-up: with V8's flag hash changed, Node's
 * embedded code cache for its own modules is not used (docs/overlay.md, "Where the memory goes").
 * `--memory-saver-mode` makes V8's ordinary full GCs memory-reducing ones, which hand the pages
 * they free back to the OS. Without it, V8 13.6 (Node 24) keeps them pooled: its memory reducer
 * sees a zero embedder (cppgc) allocation rate as a high one and never starts, and each full GC
 * postpones its 100 s watchdog. overlayd's periodic resync (a dump of the kernel's 3000 entries)
 * then left ~14 MiB pooled for good: 72 → 86–90 MiB within a minute; with the flag 65–73 MiB,
 * same CPU (docs/overlay.md).
 */
export const NODE_FLAGS: Readonly<Record<string, readonly string[]>> = {
  overlayd: ['--max-semi-space-size=1', '--no-opt', '--no-maglev', '--memory-saver-mode'],
};

/** The flags of `cmd` (a package.json bin name); none for a command not listed. */
export function nodeFlags(cmd: string): string[] {
  return [...(NODE_FLAGS[cmd] ?? [])];
}
