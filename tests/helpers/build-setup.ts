// Global setup of the integration project: the tests that run the CLI run its build (dist/), so the build
// is brought up to date with harness/ once, before any test file starts.
import { ensureBuilt } from '../../bin/build.mjs';

export default function setup(): void {
  ensureBuilt();
}
