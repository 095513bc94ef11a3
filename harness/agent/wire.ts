// The guest agent's protocol on the wire: a request's JSON line, a response's, the agent's refusal
// (AgentError), and the hex of map keys and values. The ops' types are protocol.ts's.
import type { Hex, OpName, Ops, Response } from './protocol.js';

/** An operation the agent refused: carries the kernel's errno and the libbpf/verifier log. */
export class AgentError extends Error {
  constructor(
    readonly op: string,
    readonly error: string,
    readonly errno: number,
    readonly log: string,
  ) {
    super(`agent ${op}: ${error}${errno ? ` (errno ${errno})` : ''}${log ? `\n${log.trimEnd()}` : ''}`);
    this.name = 'AgentError';
  }
}

/** Encodes request fields as one flat JSON line; rejects nested values the agent cannot parse. */
export function encodeRequest<K extends OpName>(id: number, op: K, fields: Ops[K]['req']): string {
  for (const [k, v] of Object.entries(fields)) {
    if (v !== null && v !== undefined && typeof v === 'object') {
      throw new TypeError(`agent request ${op}: field ${k} must be flat (string, number, boolean)`);
    }
  }
  return JSON.stringify({ id, op, ...fields }) + '\n';
}

/** Parses one response line; anything that is not a well-formed response throws. */
export function decodeResponse(line: string): Response<OpName> {
  let msg: unknown;
  try {
    msg = JSON.parse(line);
  } catch {
    throw new Error(`agent wrote a line that is not JSON: ${line.slice(0, 200)}`);
  }
  if (typeof msg !== 'object' || msg === null || typeof (msg as { id?: unknown }).id !== 'number' || typeof (msg as { ok?: unknown }).ok !== 'boolean') {
    throw new Error(`agent wrote a line that is not a response: ${line.slice(0, 200)}`);
  }
  return msg as Response<OpName>;
}

// Little-endian integer encodings for map keys and values.
export function u32(n: number): Hex {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b.toString('hex');
}

export function u64(n: number | bigint): Hex {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b.toString('hex');
}

/** A MAC address ("02:00:00:00:00:01") as the 6 bytes of a map value, in wire order. */
export function mac(address: string): Hex {
  const hex = address.split(':').join('').toLowerCase();
  if (!/^[0-9a-f]{12}$/.test(hex)) throw new Error(`not a MAC address: ${address}`);
  return hex;
}

/** An IPv4 address ("10.0.0.1") as the 4 bytes of a map value, in network order. */
export function ipv4(address: string): Hex {
  const parts = address.split('.').map(Number);
  if (parts.length !== 4 || parts.some((n) => !Number.isInteger(n) || n < 0 || n > 255)) throw new Error(`not an IPv4 address: ${address}`);
  return Buffer.from(parts).toString('hex');
}

/** Reads consecutive little-endian u64 fields from a hex value (e.g. a {packets, bytes} struct). */
export function readU64s(hex: Hex): bigint[] {
  const b = Buffer.from(hex, 'hex');
  const out: bigint[] = [];
  for (let off = 0; off + 8 <= b.length; off += 8) out.push(b.readBigUInt64LE(off));
  return out;
}

export function readU32(hex: Hex): number {
  return Buffer.from(hex, 'hex').readUInt32LE(0);
}
