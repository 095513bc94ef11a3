// The run's default kernel (BPF_HARNESS_KERNEL, else the catalog's default), resolved once per
// test file: a guest start takes a resolved kernel (harness/guest/plan.ts) and does not fetch or
// build one itself.
import { getKernel, type Kernel } from '../../harness/kernels/catalog.js';

let resolved: Promise<Kernel> | undefined;

export const defaultKernel = (): Promise<Kernel> => (resolved ??= getKernel());
