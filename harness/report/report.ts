// Reports of a run: the kernel × program-type matrix built from the run's records
// (harness/report/run-record.ts), rendered for the terminal, as Markdown and as JUnit XML. A flaky test
// (failed, then passed on a retry) is never a plain pass: it has its own mark in the table, its
// own section with its first failure, and a Surefire-style <flakyFailure> in JUnit.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { boundCell, boundText, marginPct, pctCell } from './margin.js';
import { type KernelFault, type KernelRun, readRuns, type TestRecord } from './run-record.js';

const firstLines = (s: string, n = 3) => s.split('\n').filter(Boolean).slice(0, n).join(' / ');

export type CellState = 'pass' | 'flaky' | 'fail' | 'skip' | 'none';
export interface Cell {
  state: CellState;
  /** Tests that passed at their first attempt. */
  passed: number;
  failed: number;
  skipped: number;
  /** Tests that failed, then passed on a retry (not counted in passed). */
  flaky: number;
  /** Skip reasons, or the first failure. */
  detail: string[];
  logs: string[];
  /** The kernel faults of each failed test that had any, with the kernel's lines. */
  faults: { test: string; faults: KernelFault[] }[];
  /** The flaky tests, each with its first failure. */
  flakyTests: TestRecord[];
}

/** One line on a flaky test: when it passed, and how it failed first. */
export function flakyText(t: TestRecord): string {
  const when = t.attempts ? `on attempt ${t.attempts}` : 'on a retry';
  return `${t.name}: failed, then passed ${when}; first failure: ${firstLines(t.firstError ?? '(no message)', 1)}`;
}

/** The logs of a flaky test: its own, and the console named in its first failure (a fault's guest is another). */
function flakyLogs(t: TestRecord): string[] {
  const faulted = /\(console: ([^)]+)\)/.exec(t.firstError ?? '')?.[1];
  return [...new Set([faulted, t.consoleLog, t.agentLog].filter((l): l is string => Boolean(l)))];
}

const faultHeadline = (f: KernelFault) => `kernel ${f.kind}: ${f.line}`;

/** One cell of the matrix: how a program type fared on a kernel. */
export function cellOf(run: KernelRun, suite: string): Cell {
  const tests = run.tests.filter((t) => t.suite === suite);
  const errors = run.suiteErrors.filter((e) => e.suite === suite);
  const cell: Cell = { state: 'none', passed: 0, failed: 0, skipped: 0, flaky: 0, detail: [], logs: [], faults: [], flakyTests: [] };
  for (const t of tests) {
    if (t.state === 'passed' && t.flaky) {
      cell.flaky++;
      cell.flakyTests.push(t);
    } else if (t.state === 'passed') cell.passed++;
    else if (t.state === 'failed') {
      cell.failed++;
      cell.detail.push(`${t.name}${t.attempts ? ` (all ${t.attempts} attempts failed)` : ''}: ${firstLines(t.error ?? '', 1)}`);
      // The test's own error is often only what a dying guest left it (a closed connection): the
      // kernel's fault is the cause, named beside it.
      for (const f of t.faults ?? []) cell.detail.push(`${t.name}: ${faultHeadline(f)}`);
      if (t.faults?.length) cell.faults.push({ test: t.name, faults: t.faults });
      if (t.rerun) cell.detail.push(`re-run: ${t.rerun}`);
      if (t.consoleLog) cell.logs.push(t.consoleLog);
      if (t.agentLog) cell.logs.push(t.agentLog);
    } else if (t.state === 'skipped') {
      cell.skipped++;
      if (t.note) cell.detail.push(`${t.name}: skipped, ${t.note}`);
    }
  }
  for (const e of errors) {
    cell.detail.unshift(firstLines(e.error, 2));
    const log = /--- console \(([^)]+)\)/.exec(e.error)?.[1];
    if (log) cell.logs.push(log);
  }
  if (cell.failed || errors.length) cell.state = 'fail';
  else if (cell.flaky) cell.state = 'flaky';
  else if (cell.passed) cell.state = 'pass';
  else if (cell.skipped) cell.state = 'skip';
  cell.logs = [...new Set(cell.logs)];
  return cell;
}

function cellText(c: Cell): string {
  if (c.state === 'none') return '—';
  const flaky = c.flaky ? ` +${c.flaky} flaky` : '';
  if (c.state === 'fail') return `FAIL ${c.failed}/${c.passed + c.failed + c.flaky}${c.failed === 0 ? ' (setup)' : ''}${flaky}`;
  if (c.state === 'skip') return `skip (${c.skipped})`;
  const skips = c.skipped ? ` +${c.skipped} skip` : '';
  if (c.state === 'flaky') return `FLAKY ${c.flaky}/${c.passed + c.flaky}${skips}`;
  return `pass ${c.passed}${skips}`;
}

export interface Matrix {
  kernels: string[];
  suites: string[];
  cells: Map<string, Cell>;
  runs: KernelRun[];
}

export function buildMatrix(runs: KernelRun[]): Matrix {
  const kernels = runs.map((r) => r.kernel);
  const suites = [...new Set(runs.flatMap((r) => [...r.tests.map((t) => t.suite), ...r.suiteErrors.map((e) => e.suite)]))].sort();
  const cells = new Map<string, Cell>();
  for (const r of runs) for (const s of suites) cells.set(`${r.kernel}\u0000${s}`, cellOf(r, s));
  return { kernels, suites, cells, runs };
}

const cell = (m: Matrix, k: string, s: string) => m.cells.get(`${k}\u0000${s}`)!;

export function renderTerminal(m: Matrix): string {
  const head = ['program type', ...m.kernels];
  const rows = m.suites.map((s) => [s, ...m.kernels.map((k) => cellText(cell(m, k, s)))]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cols: string[]) => cols.map((c, i) => c.padEnd(widths[i])).join('  ');
  const out = [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
  const notes: string[] = [];
  for (const k of m.kernels) {
    for (const s of m.suites) {
      const c = cell(m, k, s);
      if (c.state === 'fail' || c.skipped) for (const d of c.detail) notes.push(`  [${k}] ${s}: ${d}`);
      if (c.state === 'fail') for (const l of c.logs) notes.push(`  [${k}] ${s}: log ${l}`);
      for (const t of c.flakyTests) {
        notes.push(`  [${k}] ${s}: FLAKY ${flakyText(t)}`);
        if (t.rerun) notes.push(`  [${k}] ${s}: re-run: ${t.rerun}`);
        for (const l of flakyLogs(t)) notes.push(`  [${k}] ${s}: log ${l}`);
      }
    }
  }
  return [...out, ...(notes.length ? ['', ...notes] : [])].join('\n');
}

export const mdEscape = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function renderMarkdown(m: Matrix, base: string): string {
  const out = ['# bpf-harness run', '', `| program type | ${m.kernels.join(' | ')} |`, `|---|${m.kernels.map(() => '---').join('|')}|`];
  for (const s of m.suites) out.push(`| ${s} | ${m.kernels.map((k) => cellText(cell(m, k, s))).join(' | ')} |`);
  out.push('', '## Wall time (s): each suite file with its guest\'s boot, and the whole run', '');
  out.push(`| suite | ${m.kernels.join(' | ')} |`, `|---|${m.kernels.map(() => '---').join('|')}|`);
  const secs = (ms?: number) => (ms === undefined ? '—' : (ms / 1000).toFixed(1));
  for (const s of m.suites) out.push(`| ${s} | ${m.runs.map((r) => secs(r.suiteMs?.[s])).join(' | ')} |`);
  out.push(`| **run** | ${m.runs.map((r) => secs(r.wallMs)).join(' | ')} |`);
  const link = (l: string) => `- log: [${basename(dirname(l))}/${basename(l)}](${relative(base, l)})`;
  /** A section of one heading per cell that has something to say (`body` returns its lines, or nothing). */
  const perCell = (body: (c: Cell) => string[]): string[] =>
    m.kernels.flatMap((k) =>
      m.suites.flatMap((s) => {
        const c = cell(m, k, s);
        const lines = body(c);
        return lines.length ? [`### ${s} on ${k}: ${cellText(c)}`, '', ...lines] : [];
      }),
    );
  const flaky = perCell((c) => [
    ...c.flakyTests.flatMap((t) => [`- ${mdEscape(flakyText(t))}`, ...(t.rerun ? [`- re-run: ${mdEscape(t.rerun)}`] : []), ...flakyLogs(t).map(link)]),
    ...(c.flakyTests.length ? [''] : []),
  ]);
  if (flaky.length) out.push('', '## Flaky tests: failed, then passed on a retry', '', ...flaky);
  const details = perCell((c) =>
    c.detail.length
      ? [
          ...c.detail.map((d) => `- ${mdEscape(d)}`),
          ...c.logs.map(link),
          '',
          ...c.faults.flatMap(({ test, faults }) => faults.flatMap((f) => [`The kernel's lines of the ${f.kind} during "${mdEscape(test)}":`, '', '~~~', ...f.lines, '~~~', ''])),
        ]
      : [],
  );
  if (details.length) out.push('', '## Failures and skips', '', ...details);
  const figures = boundedFigures(m);
  if (figures.length) {
    out.push('', '## Bounded figures, closest to their bound first', '', '| kernel | test | figure | value | bound | margin |', '|---|---|---|---|---|---|');
    for (const f of figures) out.push(`| ${mdEscape(f.kernel)} | ${mdEscape(`${f.test.suite}: ${f.test.name}`)} | ${mdEscape(f.name)} | ${f.value} | ${boundCell(f)} | ${pctCell(f.marginPct)} |`);
  }
  return out.join('\n') + '\n';
}

/** Every bounded figure (expectBounded) the run's tests checked, the one nearest its bound (or past it) first. */
function boundedFigures(m: Matrix) {
  return m.runs
    .flatMap((r) => r.tests.flatMap((t) => (t.bounds ?? []).map((b) => ({ ...b, kernel: r.kernel, test: t, marginPct: marginPct(b) }))))
    .sort((a, b) => a.marginPct - b.marginPct || a.kernel.localeCompare(b.kernel) || a.test.name.localeCompare(b.test.name) || a.name.localeCompare(b.name));
}

/** A test's bounded figures as JUnit properties ("bound: NAME" = "VALUE (at most N; margin M%)"). */
function boundProperties(t: TestRecord): string {
  if (!t.bounds?.length) return '';
  const props = t.bounds.map((b) => `<property name="${xml(`bound: ${b.name}`)}" value="${xml(`${b.value} (${boundText(b)}; margin ${pctCell(marginPct(b))})`)}"/>`);
  return `<properties>${props.join('')}</properties>`;
}

const xml = (s: string) =>
  s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!).replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '');

/** JUnit's one-line failure: the first kernel fault of the test when it had one, else its error's first line. */
function failureMessage(t: TestRecord): string {
  const first = firstLines(t.error ?? '', 1);
  return t.faults?.length ? `${faultHeadline(t.faults[0])}${first ? ` (the test: ${first})` : ''}` : first;
}

/** The kernel's lines of each fault of a test that its error does not carry already. */
function faultText(t: TestRecord): string {
  const missing = (t.faults ?? []).filter((f) => !(t.error ?? '').includes(f.lines.join('\n')));
  return missing.map((f) => `\n\n${faultHeadline(f)}\n${f.lines.join('\n')}`).join('');
}

export function renderJunit(m: Matrix): string {
  const suites: string[] = [];
  for (const r of m.runs) {
    for (const s of m.suites) {
      const tests = r.tests.filter((t) => t.suite === s);
      const errors = r.suiteErrors.filter((e) => e.suite === s);
      if (!tests.length && !errors.length) continue;
      const failures = tests.filter((t) => t.state === 'failed').length + errors.length;
      const skipped = tests.filter((t) => t.state === 'skipped').length;
      const time = tests.reduce((a, t) => a + t.durationMs, 0) / 1000;
      const cases = tests.map((t) => {
        const attrs = `classname="${xml(`${r.kernel}.${s}`)}" name="${xml(t.name)}" time="${(t.durationMs / 1000).toFixed(3)}"`;
        if (t.state === 'failed') {
          const logs = [t.consoleLog, t.agentLog].filter(Boolean).map((l) => `\n[[ATTACHMENT|${l}]]`).join('');
          const rerun = t.rerun ? `\nre-run: ${t.rerun}` : '';
          return `    <testcase ${attrs}>${boundProperties(t)}<failure message="${xml(failureMessage(t))}">${xml((t.error ?? '') + faultText(t) + rerun)}</failure><system-out>${xml(logs)}</system-out></testcase>`;
        }
        if (t.state === 'skipped' || t.state === 'pending') return `    <testcase ${attrs}><skipped message="${xml(t.note ?? 'skipped')}"/></testcase>`;
        if (t.flaky) {
          // Maven Surefire's form of a test that passed on a rerun: a passing testcase with a
          // <flakyFailure> (for the tools that read Surefire's reports; the others see a pass), and
          // the same words in system-out, which JUnit viewers show.
          const first = t.firstError ?? '(no message)';
          const logs = flakyLogs(t).map((l) => `\n[[ATTACHMENT|${l}]]`).join('');
          const rerun = t.rerun ? `\nre-run: ${t.rerun}` : '';
          return `    <testcase ${attrs}>${boundProperties(t)}<flakyFailure message="${xml(firstLines(first, 1))}" type="flaky"><stackTrace>${xml(first)}</stackTrace></flakyFailure><system-out>${xml(`FLAKY ${flakyText(t)}${rerun}${logs}`)}</system-out></testcase>`;
        }
        const props = boundProperties(t);
        return props ? `    <testcase ${attrs}>${props}</testcase>` : `    <testcase ${attrs}/>`;
      });
      for (const e of errors) cases.push(`    <testcase classname="${xml(`${r.kernel}.${s}`)}" name="suite setup" time="0"><error message="${xml(firstLines(e.error, 1))}">${xml(e.error)}</error></testcase>`);
      suites.push(`  <testsuite name="${xml(`${s} on ${r.kernel}`)}" tests="${cases.length}" failures="${failures}" skipped="${skipped}" time="${time.toFixed(3)}">\n${cases.join('\n')}\n  </testsuite>`);
    }
  }
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="bpf-harness">\n${suites.join('\n')}\n</testsuites>\n`;
}

/** Renders the run's reports into its directory; returns the terminal table and the paths. */
export function writeReports(
  dir: string,
  order: string[] = [],
  from: string[] = [dir],
): { table: string; markdown: string; junit: string; failed: boolean; flaky: number } {
  for (const d of from) if (!existsSync(d)) throw new Error(`no results in ${d}`);
  mkdirSync(dir, { recursive: true });
  const rank = (k: string) => (order.includes(k) ? order.indexOf(k) : order.length);
  const m = buildMatrix(readRuns(...from).sort((a, b) => rank(a.kernel) - rank(b.kernel)));
  const markdown = join(dir, 'report.md');
  const junit = join(dir, 'junit.xml');
  writeFileSync(markdown, renderMarkdown(m, dir));
  writeFileSync(junit, renderJunit(m));
  const failed = [...m.cells.values()].some((c) => c.state === 'fail');
  const flaky = [...m.cells.values()].reduce((n, c) => n + c.flaky, 0);
  return { table: renderTerminal(m), markdown, junit, failed, flaky };
}

/** What flaky tests mean for the run: words for the closing lines. */
export const flakyNote = (flakyOk: boolean): string =>
  `failed, then passed on a retry; ${flakyOk ? 'allowed by --flaky-ok' : 'they fail the run unless --flaky-ok'}`;

/**
 * Whether a run with these reports fails: a failed cell does, and so do flaky tests unless they
 * are allowed (--flaky-ok); with a line on the flaky tests, when there were any.
 */
export function runVerdict(r: { failed: boolean; flaky: number }, flakyOk: boolean): { failed: boolean; line?: string } {
  if (!r.flaky) return { failed: r.failed };
  return { failed: r.failed || !flakyOk, line: `flaky: ${r.flaky} test${r.flaky > 1 ? 's' : ''} (${flakyNote(flakyOk)})` };
}
