// The harness's own failure-path tests wait out a fraction of their bounds: a guest that never
// starts sshd, never answers, or stops answering keepalives fails within BPF_HARNESS_TIMEOUT_SCALE
// times the real bound.

/** Runs `f` with BPF_HARNESS_TIMEOUT_SCALE set to `scale`, and puts back what was there. */
export async function withTimeoutScale<T>(scale: number, f: () => Promise<T>): Promise<T> {
  const was = process.env.BPF_HARNESS_TIMEOUT_SCALE;
  process.env.BPF_HARNESS_TIMEOUT_SCALE = String(scale);
  try {
    return await f();
  } finally {
    if (was === undefined) delete process.env.BPF_HARNESS_TIMEOUT_SCALE;
    else process.env.BPF_HARNESS_TIMEOUT_SCALE = was;
  }
}
