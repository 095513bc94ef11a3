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
  // The ops of agent.c's g_ops table and of protocol.ts's Ops, as the field checks below read them.
  const inAgent = [...(await fieldsInC('req')).keys()].sort();
  const inProtocol = [...(await fieldsInTs()).keys()].sort();
  const doc = await readFile(join(REPO_ROOT, 'images/agent/PROTOCOL.md'), 'utf8');
  const inDoc = [...doc.matchAll(/^\| `(\w+)` \|/gm)].map((m) => m[1]).sort();
  expect(inAgent.length, 'ops found in agent.c').toBeGreaterThan(20);
  expect(inProtocol, 'harness/agent/protocol.ts Ops vs the agent\'s g_ops').toEqual(inAgent);
  expect(inDoc, 'PROTOCOL.md\'s table vs the agent\'s g_ops').toEqual(inAgent);
});

test.each([
  ['request', 2],
  ['response', 3],
] as const)('each op\'s %s fields are the same in harness/agent/protocol.ts and PROTOCOL.md\'s table, read field by field', async (part, column) => {
  const { readFile } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const { REPO_ROOT } = await import('../../harness/base/paths.js');
  const inTs = await fieldsInTs();
  // The table's column: an op may have more than one row (`probe` (map type)), and
  // `same fields as X` stands for X's.
  const doc = await readFile(join(REPO_ROOT, 'images/agent/PROTOCOL.md'), 'utf8');
  const rows = new Map<string, string>();
  for (const m of doc.matchAll(/^\| `(\w+)`(?: \([^)]*\))? \| (.*?) \| (.*) \|$/gm)) rows.set(m[1], `${rows.get(m[1]) ?? ''} ${m[column]}`.trim());
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
    const ts = inTs.get(op);
    const fields = (part === 'request' ? ts?.req : ts?.res) ?? [];
    // A response's nested names (load's programs' section) may stand in the cell too.
    const known = part === 'request' ? new Set(fields) : (ts?.resDeep ?? new Set<string>());
    for (const f of fields) if (!named.has(f)) drift.push(`${op}: ${f} is a ${part} field in protocol.ts, not in PROTOCOL.md`);
    // Another op the cell refers to ("read with `sock_stats`") is not a field.
    for (const f of topLevel(cell)) if (!known.has(f) && !rows.has(f)) drift.push(`${op}: PROTOCOL.md names ${f}, which protocol.ts's ${part} does not have`);
  }
  expect(rows.size).toBeGreaterThan(40);
  expect(drift).toEqual([]);
});

/** Each op's fields in harness/agent/protocol.ts, as the compiler sees them (intersections and
 *  unions such as MapRef's obj + map, or pin, resolved): its request's, its response's, and every
 *  name in the response's nested objects and arrays (load's programs' section). */
interface TsFields {
  req: string[];
  res: string[];
  resDeep: Set<string>;
}
let tsFields: Promise<Map<string, TsFields>> | undefined;
const fieldsInTs = () => (tsFields ??= readTsFields());
async function readTsFields(): Promise<Map<string, TsFields>> {
  const { join } = await import('node:path');
  const ts = (await import('typescript')).default;
  const { REPO_ROOT } = await import('../../harness/base/paths.js');
  type Type = import('typescript').Type;
  const file = join(REPO_ROOT, 'harness/agent/protocol.ts');
  const program = ts.createProgram([file], { strict: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, skipLibCheck: true, noEmit: true });
  const checker = program.getTypeChecker();
  const ops = program.getSourceFile(file)!.statements.find((s) => ts.isInterfaceDeclaration(s) && s.name.text === 'Ops') as import('typescript').InterfaceDeclaration;
  const members = (t: Type): Type[] => (t.isUnion() ? t.types.flatMap(members) : [t]);
  const names = (t: Type) => [...new Set(members(t).flatMap((m) => m.getProperties().map((x) => x.name)))].sort();
  const deep = (t: Type, depth: number): string[] =>
    depth > 4
      ? []
      : members(t).flatMap((m) =>
          checker.isArrayType(m)
            ? deep(checker.getTypeArguments(m as import('typescript').TypeReference)[0], depth + 1)
            : m.getProperties().flatMap((p) => [p.name, ...deep(checker.getNonNullableType(checker.getTypeOfSymbolAtLocation(p, ops)), depth + 1)]),
        );
  return new Map(
    checker
      .getTypeAtLocation(ops.name)
      .getProperties()
      .map((p) => {
        const part = (k: 'req' | 'res') => checker.getTypeOfSymbolAtLocation(checker.getTypeOfSymbolAtLocation(p, ops).getProperty(k)!, ops);
        return [p.name, { req: names(part('req')), res: names(part('res')), resDeep: new Set(deep(part('res'), 0)) }] as const;
      }),
  );
}

/** Each op's fields as the agent's C reads or writes them, from its op_ function in the dispatch
 *  table: `req`, the keys it reads from the request (struct req *); `res`, the keys it writes to
 *  the response (struct jbuf *). A key is what a function is handed for a parameter named `key`
 *  (req_str(r, "path", …), jb_kint(out, "sent", …), req_map(r, o, "map", …)), followed through
 *  every function the request or response is passed on to, with the literals the caller gave;
 *  snprintf(k, sizeof(k), "netns%s", x) makes k a key built from x's value. */
const cFields = new Map<'req' | 'res', Promise<Map<string, string[]>>>();
const fieldsInC = (kind: 'req' | 'res') => cFields.get(kind) ?? cFields.set(kind, readCFields(kind)).get(kind)!;
async function readCFields(kind: 'req' | 'res'): Promise<Map<string, string[]>> {
  const { readFile, readdir } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const { REPO_ROOT } = await import('../../harness/base/paths.js');
  const dir = join(REPO_ROOT, 'images/agent');
  const files = (await readdir(dir)).filter((f) => f.endsWith('.c'));
  const src = (await Promise.all(files.map((f) => readFile(join(dir, f), 'utf8')))).join('\n');
  const struct = kind === 'req' ? 'req' : 'jbuf';
  // Every function (defined at column 0) that takes the struct: its parameters by name, and which one it is.
  const fns = new Map<string, { params: string[]; v: string; body: string }>();
  for (const m of src.matchAll(/^(?:static )?(?:[\w ]+?[ *])(\w+)\(([^)]*)\)\n\{\n([\s\S]*?)^\}/gm)) {
    const v = new RegExp(`struct ${struct} \\*(\\w+)`).exec(m[2])?.[1];
    if (v) fns.set(m[1], { params: m[2].split(',').map((p) => /(\w+)$/.exec(p.trim())?.[1] ?? ''), v, body: m[3] });
  }
  /** Each call of one of those functions in body: where, which, and its arguments split at the top level. */
  const calls = (body: string) =>
    [...body.matchAll(/\b(\w+)\(/g)]
      .filter((m) => fns.has(m[1]))
      .map((m) => {
        const args: string[] = [];
        let cur = '';
        let depth = 1;
        let quoted = false;
        for (let i = m.index + m[0].length; i < body.length; i++) {
          const c = body[i];
          if (quoted) {
            cur += c;
            if (c === '\\') cur += body[++i];
            else if (c === '"') quoted = false;
            continue;
          }
          if (c === '"') quoted = true;
          if (c === '(') depth++;
          if (c === ')' && --depth === 0) break;
          if (c === ',' && depth === 1) {
            args.push(cur.trim());
            cur = '';
          } else cur += c;
        }
        args.push(cur.trim());
        return { at: m.index, callee: m[1], args };
      });
  const built = (body: string) => [...body.matchAll(/snprintf\((\w+), sizeof\(\w+\), "(\w*)%s(\w*)", (\w+)\);/g)];
  const keys = (name: string, given: Record<string, string>, seen: string[]): Set<string> => {
    const f = fns.get(name);
    const out = new Set<string>();
    if (!f || seen.includes(name)) return out;
    let values = given;
    const literal = (a: string) => /^"(\w*)"$/.exec(a)?.[1] ?? values[a];
    const builds = built(f.body);
    for (const { at, callee, args } of calls(f.body)) {
      for (const m of builds) if (m.index < at && literal(m[4]) !== undefined) values = { ...values, [m[1]]: m[2] + literal(m[4]) + m[3] };
      const g = fns.get(callee)!;
      const i = args.indexOf(f.v);
      if (i < 0 || g.params[i] !== g.v) continue;
      const passed = Object.fromEntries(args.map((a, j) => [g.params[j], literal(a)] as const).filter((e): e is readonly [string, string] => e[1] !== undefined));
      if (passed.key !== undefined) out.add(passed.key);
      for (const k of keys(callee, passed, [...seen, name])) out.add(k);
    }
    return out;
  };
  const agentC = src.slice(src.indexOf('} g_ops[] = {'));
  const table = agentC.slice(0, agentC.indexOf('};'));
  return new Map([...table.matchAll(/\{ "(\w+)", (op_\w+) \}/g)].map((m) => [m[1], [...keys(m[2], {}, [])].sort()] as const));
}

test('each op\'s request fields are the same in harness/agent/protocol.ts and the agent\'s C, read field by field', async () => {
  const [inTs, inC] = await Promise.all([fieldsInTs(), fieldsInC('req')]);
  // The reader finds the fields of ops that have them: a guard against it finding nothing anywhere.
  expect(inC.get('inet_send'), 'inet_send as the C reads it').toEqual(['count', 'data', 'dport', 'dst', 'sock']);
  expect(inC.get('veth_pair'), 'veth_pair\'s built keys (req_side)').toEqual(expect.arrayContaining(['ifnameA', 'macB', 'netnsA', 'prefixLen']));
  const drift: string[] = [];
  for (const [op, fields] of inC) {
    const declared = inTs.get(op)?.req ?? [];
    for (const f of fields) if (!declared.includes(f)) drift.push(`${op}: the agent reads ${f}, which protocol.ts's request does not have`);
    for (const f of declared) if (!fields.includes(f)) drift.push(`${op}: protocol.ts's request has ${f}, which the agent never reads`);
  }
  expect(drift).toEqual([]);
});

test('each op\'s response fields are the same in harness/agent/protocol.ts and the agent\'s C, written field by field', async () => {
  const [inTs, inC] = await Promise.all([fieldsInTs(), fieldsInC('res')]);
  expect(inC.get('inet_send'), 'inet_send as the C writes it (put_names among it)').toEqual(['bytes', 'congestion', 'localAddr', 'localPort', 'remoteAddr', 'remotePort', 'sendErrno', 'sent']);
  expect(inC.get('attach_kprobe'), 'attach_kprobe: link_keep\'s link').toContain('link');
  const drift: string[] = [];
  for (const [op, fields] of inC) {
    const declared = inTs.get(op) ?? { res: [], resDeep: new Set<string>() };
    // A key the C writes inside a nested object (load's programs: section) is named somewhere in the response's type.
    for (const f of fields) if (!declared.resDeep.has(f)) drift.push(`${op}: the agent writes ${f}, which protocol.ts's response does not have`);
    for (const f of declared.res) if (!fields.includes(f)) drift.push(`${op}: protocol.ts's response has ${f}, which the agent never writes`);
  }
  expect(drift).toEqual([]);
});
