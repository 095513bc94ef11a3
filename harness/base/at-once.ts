// A bounded pool: each item through `fn`, at most `limit` at a time, in the list's order as slots
// free up (a kernel matrix's columns: harness/cli/suite.ts, harness/cli/run.ts).

/** Runs fn(item) for every item, at most `limit` (at least 1) at once; resolves when all are done. */
export async function eachAtOnce<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  const slot = async () => {
    for (let item = queue.shift(); item !== undefined; item = queue.shift()) await fn(item);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, slot));
}
