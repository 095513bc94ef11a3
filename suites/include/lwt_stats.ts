// The per-protocol counts of the lwt_in and lwt_out suites' programs (lwt_common.h's stats map,
// pinned at `pin`): a u32 IP protocol number to {packets, bytes}, bytes being the IPv4 length.
import { IP_PROTO, type Guest, type Proto, readU64s, u32 } from '../../harness/index.js';

export function protocolCounts(guest: Guest, pin: string) {
  /** {packets, bytes} the program counted for a protocol. */
  const counted = async (proto: Proto) => {
    const [packets, bytes] = readU64s((await guest.pinnedMap(pin).lookup(u32(IP_PROTO[proto])))!);
    return { packets, bytes };
  };
  return {
    counted,
    /** Judged: the program counted `expected` UDP packets (it counts each before its verdict). */
    udpJudged: (expected: number) => ({ count: async () => (await counted('udp')).packets, expected }),
    /** Protocol numbers with a non-zero count, ascending. */
    protocolsSeen: async (): Promise<number[]> =>
      (await guest.pinnedMap(pin).dump())
        .filter((e) => readU64s(e.value!)[0] !== 0n)
        .map((e) => Buffer.from(e.key, 'hex').readUInt32LE(0))
        .sort((x, y) => x - y),
  };
}
