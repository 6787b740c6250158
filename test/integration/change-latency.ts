/**
 * Times how long changes take to become visible: for i = 1..count, applies `change(i)` and polls
 * `visible(i)` until it is true or `limitMs` passes. Returns the samples (ms) sorted, only for the
 * changes that became visible — a caller asserts both how many and how fast (e.g. the median,
 * so one scheduling hiccup on a loaded 2-core CI machine does not decide the outcome).
 */
export async function changeLatencies(
  count: number,
  change: (i: number) => unknown,
  visible: (i: number) => Promise<boolean>,
  limitMs: number,
): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 1; i <= count; i++) {
    const t0 = performance.now();
    await change(i);
    while (performance.now() - t0 < limitMs) {
      if (await visible(i)) {
        samples.push(performance.now() - t0);
        break;
      }
    }
  }
  return samples.sort((a, b) => a - b);
}
