// Records BPF programs write to a ring buffer or a perf event array, read through the agent
// (`events_open`, `events_read`), typed. A perf event array must be opened before the programs
// write to it (EventReader.open); a ring buffer is also opened by its first read (EventReader.of).
//
//   const events = await EventReader.open(obj, 'events');
//   ... the programs run ...
//   const { records, lost } = await events.read({ expect: 10 });
import type { BpfObject } from './agent.js';
import type { Ops } from './protocol.js';

export type EventsRead = Ops['events_read']['res'];

/** A reader of one ringbuf or perf_event_array map of a loaded object; closed with the object. */
export class EventReader {
  private constructor(
    readonly obj: BpfObject,
    readonly map: string,
  ) {}

  /** Opens the reader now (events_open): a perf event array loses what programs write before. */
  static async open(obj: BpfObject, map: string): Promise<EventReader> {
    await obj.agent.call('events_open', { obj: obj.handle, map });
    return new EventReader(obj, map);
  }

  /** A reader that the agent opens on the first read (a ring buffer keeps what came before it). */
  static of(obj: BpfObject, map: string): EventReader {
    return new EventReader(obj, map);
  }

  /**
   * Records since the last read, in the order read (hex `data`, and `cpu` for a perf event
   * array), and how many the perf buffer lost: read until `waitMs` (default 200) passes with
   * nothing new, or, with `expect`, once that many are in and 20 ms more.
   */
  read(req: Omit<Ops['events_read']['req'], 'obj' | 'map'> = {}): Promise<EventsRead> {
    return this.obj.agent.call('events_read', { obj: this.obj.handle, map: this.map, ...req });
  }
}
