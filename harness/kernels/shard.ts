// CI shards of a list of kernels (`run --shard i/n`): shard i of n takes the i-th, the (i+n)-th, …
// of the list; `npm run report` merges the shards' records into one report.

/** "i/n" with 1 <= i <= n, or null. */
export function parseShard(text: string): { i: number; n: number } | null {
  const m = /^(\d+)\/(\d+)$/.exec(text);
  if (!m) return null;
  const [i, n] = [Number(m[1]), Number(m[2])];
  return n >= 1 && i >= 1 && i <= n ? { i, n } : null;
}

/** The items of shard i of n. */
export function shardOf<T>(items: T[], s: { i: number; n: number }): T[] {
  return items.filter((_, j) => j % s.n === s.i - 1);
}
