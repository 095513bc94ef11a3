import { expect, test } from 'vitest';
import { decodeResponse, encodeRequest, ipv4, mac, readU32, readU64s, u32, u64 } from '../../harness/agent/wire.js';

test('requests are one flat JSON line', () => {
  expect(encodeRequest(3, 'map_lookup', { obj: 'o', map: 'm', key: u32(17) })).toBe('{"id":3,"op":"map_lookup","obj":"o","map":"m","key":"11000000"}\n');
  expect(() => encodeRequest(1, 'load', { path: { nested: 1 } } as never)).toThrow(/must be flat/);
});

test('responses must be well formed', () => {
  expect(decodeResponse('{"id":1,"ok":true,"sock":4}')).toEqual({ id: 1, ok: true, sock: 4 });
  expect(() => decodeResponse('not json')).toThrow(/not JSON/);
  expect(() => decodeResponse('{"ok":true}')).toThrow(/not a response/);
});

test('little-endian encodings round-trip', () => {
  expect(u32(1)).toBe('01000000');
  expect(u64(2n ** 40n)).toBe('0000000000010000');
  expect(readU32('ffffffff')).toBe(4294967295);
  expect(readU64s(u64(5) + u64(1500))).toEqual([5n, 1500n]);
});

test('MAC and IPv4 addresses are their bytes in wire order; anything else is refused', () => {
  expect(mac('02:00:0A:0b:00:01')).toBe('02000a0b0001');
  expect(ipv4('10.0.0.1')).toBe('0a000001');
  expect(ipv4('192.168.255.7')).toBe('c0a8ff07');
  expect(() => mac('02:00:00:00:01')).toThrow(/not a MAC address/);
  expect(() => mac('zz:00:00:00:00:01')).toThrow(/not a MAC address/);
  expect(() => ipv4('10.0.0')).toThrow(/not an IPv4 address/);
  expect(() => ipv4('10.0.0.256')).toThrow(/not an IPv4 address/);
});

test('the op list is one list: the agent\'s dispatch table, harness/agent/protocol.ts and PROTOCOL.md name the same ops', async () => {
  const { readFile } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const { REPO_ROOT } = await import('../../harness/base/paths.js');
  const read = (p: string) => readFile(join(REPO_ROOT, p), 'utf8');
  const agentC = await read('images/agent/agent.c');
  const table = agentC.slice(agentC.indexOf('} g_ops[] = {'), agentC.indexOf('};', agentC.indexOf('} g_ops[] = {')));
  const inAgent = [...table.matchAll(/\{ "(\w+)", op_\w+ \}/g)].map((m) => m[1]).sort();
  const protocolTs = await read('harness/agent/protocol.ts');
  const opsBody = protocolTs.slice(protocolTs.indexOf('export interface Ops {'), protocolTs.indexOf('\n}\n', protocolTs.indexOf('export interface Ops {')));
  const inProtocol = [...opsBody.matchAll(/^ {2}(\w+): \{/gm)].map((m) => m[1]).sort();
  const doc = await read('images/agent/PROTOCOL.md');
  const inDoc = [...doc.matchAll(/^\| `(\w+)` \|/gm)].map((m) => m[1]).sort();
  expect(inAgent.length, 'ops found in agent.c').toBeGreaterThan(20);
  expect(inProtocol, 'harness/agent/protocol.ts Ops vs the agent\'s g_ops').toEqual(inAgent);
  expect(inDoc, 'PROTOCOL.md\'s table vs the agent\'s g_ops').toEqual(inAgent);
});

test('each op\'s request fields are the same in harness/agent/protocol.ts and PROTOCOL.md\'s table, read field by field', async () => {
  const { readFile } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const { REPO_ROOT } = await import('../../harness/base/paths.js');
  const inTs = await requestFieldsInTs();
  // The table's request column: an op may have more than one row (`probe` (map type)), and
  // `same fields as X` stands for X's.
  const doc = await readFile(join(REPO_ROOT, 'images/agent/PROTOCOL.md'), 'utf8');
  const rows = new Map<string, string>();
  for (const m of doc.matchAll(/^\| `(\w+)`(?: \([^)]*\))? \| (.*?) \| (.*) \|$/gm)) rows.set(m[1], `${rows.get(m[1]) ?? ''} ${m[2]}`.trim());
  /** Backticked names outside parentheses: the fields themselves, not values or notes about them. */
  const topLevel = (cell: string) => {
    let depth = 0;
    let out = '';
    for (const c of cell) {
      if ('([{'.includes(c)) depth++;
      if (depth === 0) out += c;
      if (')]}'.includes(c)) depth--;
    }
    return [...out.matchAll(/`(\w+)`/g)].map((m) => m[1]);
  };
  const drift: string[] = [];
  for (const [op, row] of rows) {
    const cell = /^same fields as `(\w+)`/.exec(row) ? rows.get(/^same fields as `(\w+)`/.exec(row)![1])! : row;
    const named = new Set([...cell.matchAll(/`(\w+)`/g)].map((m) => m[1]));
    const fields = inTs.get(op) ?? [];
    for (const f of fields) if (!named.has(f)) drift.push(`${op}: ${f} is a request field in protocol.ts, not in PROTOCOL.md`);
    for (const f of topLevel(cell)) if (!fields.includes(f)) drift.push(`${op}: PROTOCOL.md names ${f}, which protocol.ts's request does not have`);
  }
  expect(rows.size).toBeGreaterThan(40);
  expect(drift).toEqual([]);
});

/** Each op's request fields in harness/agent/protocol.ts, as the compiler sees them: intersections
 *  and unions (MapRef: obj + map, or pin) resolved. */
let tsFields: Promise<Map<string, string[]>> | undefined;
const requestFieldsInTs = () => (tsFields ??= readTsFields());
async function readTsFields(): Promise<Map<string, string[]>> {
  const { join } = await import('node:path');
  const ts = (await import('typescript')).default;
  const { REPO_ROOT } = await import('../../harness/base/paths.js');
  const file = join(REPO_ROOT, 'harness/agent/protocol.ts');
  const program = ts.createProgram([file], { strict: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, skipLibCheck: true, noEmit: true });
  const checker = program.getTypeChecker();
  const ops = program.getSourceFile(file)!.statements.find((s) => ts.isInterfaceDeclaration(s) && s.name.text === 'Ops') as import('typescript').InterfaceDeclaration;
  const names = (t: import('typescript').Type) => [...new Set((t.isUnion() ? t.types : [t]).flatMap((m) => m.getProperties().map((x) => x.name)))].sort();
  return new Map(
    checker
      .getTypeAtLocation(ops.name)
      .getProperties()
      .map((p) => [p.name, names(checker.getTypeOfSymbolAtLocation(checker.getTypeOfSymbolAtLocation(p, ops).getProperty('req')!, ops))] as const),
  );
}

/** Each op's request fields as the agent's C reads them: the keys its op_ function passes to the
 *  req_* readers, itself or through the functions it hands the request to (req_obj's "obj",
 *  req_map(r, o, "map", …)'s key argument), and keys it builds (snprintf(k, …, "netns%s", x) for a
 *  literal x of the caller's). */
async function requestFieldsInC(): Promise<Map<string, string[]>> {
  const { readFile, readdir } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const { REPO_ROOT } = await import('../../harness/base/paths.js');
  const dir = join(REPO_ROOT, 'images/agent');
  const files = (await readdir(dir)).filter((f) => f.endsWith('.c'));
  const src = (await Promise.all(files.map((f) => readFile(join(dir, f), 'utf8')))).join('\n');
  // Every function (defined at column 0) that takes a struct req *: its parameters by name.
  const fns = new Map<string, { params: string[]; req: string; body: string }>();
  for (const m of src.matchAll(/^(?:static )?(?:[\w ]+?[ *])(\w+)\(([^)]*)\)\n\{\n([\s\S]*?)^\}/gm)) {
    const req = /struct req \*(\w+)/.exec(m[2])?.[1];
    if (req) fns.set(m[1], { params: m[2].split(',').map((p) => /(\w+)$/.exec(p.trim())?.[1] ?? ''), req, body: m[3] });
  }
  const keys = (name: string, args: Record<string, string>, seen: string[]): Set<string> => {
    const f = fns.get(name);
    const out = new Set<string>();
    if (!f || seen.includes(name)) return out;
    const literal = (a: string) => /^"(\w*)"$/.exec(a.trim())?.[1] ?? args[a.trim()];
    for (const m of f.body.matchAll(/snprintf\((\w+), sizeof\(\w+\), "(\w*)%s(\w*)", (\w+)\);\n\s*if \(req_\w+\((\w+), \1,/g)) {
      if (m[5] === f.req && literal(m[4]) !== undefined) out.add(m[2] + literal(m[4]) + m[3]);
    }
    for (const m of f.body.matchAll(new RegExp(`\\b(\\w+)\\(${f.req}((?:, [^(),]+(?:\\([^()]*\\))?)*)\\)`, 'g'))) {
      const callee = fns.get(m[1]);
      if (!callee) continue;
      const passed = Object.fromEntries(
        m[2]
          .split(', ')
          .slice(1)
          .map((a, i) => [callee.params[i + 1], literal(a)] as const)
          .filter((e): e is readonly [string, string] => e[1] !== undefined),
      );
      if (passed.key !== undefined) out.add(passed.key);
      for (const k of keys(m[1], passed, [...seen, name])) out.add(k);
    }
    return out;
  };
  const agentC = src.slice(src.indexOf('} g_ops[] = {'));
  const table = agentC.slice(0, agentC.indexOf('};'));
  return new Map([...table.matchAll(/\{ "(\w+)", (op_\w+) \}/g)].map((m) => [m[1], [...keys(m[2], {}, [])].sort()] as const));
}

test('each op\'s request fields are the same in harness/agent/protocol.ts and the agent\'s C, read field by field', async () => {
  const [inTs, inC] = await Promise.all([requestFieldsInTs(), requestFieldsInC()]);
  // The reader finds the fields of ops that have them: a guard against it finding nothing anywhere.
  expect(inC.get('inet_send'), 'inet_send as the C reads it').toEqual(['count', 'data', 'dport', 'dst', 'sock']);
  expect(inC.get('veth_pair'), 'veth_pair\'s built keys (req_side)').toEqual(expect.arrayContaining(['ifnameA', 'macB', 'netnsA', 'prefixLen']));
  const drift: string[] = [];
  for (const [op, fields] of inC) {
    const declared = inTs.get(op) ?? [];
    for (const f of fields) if (!declared.includes(f)) drift.push(`${op}: the agent reads ${f}, which protocol.ts's request does not have`);
    for (const f of declared) if (!fields.includes(f)) drift.push(`${op}: protocol.ts's request has ${f}, which the agent never reads`);
  }
  expect(drift).toEqual([]);
});
