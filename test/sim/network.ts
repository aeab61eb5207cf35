// An in-memory network for the replication simulation: one PeerTransport per node incarnation,
// whose calls are delivered to the target node's PeerService through the scheduler.
//
// A call is a request message and a reply message, each delayed at random (so messages
// overtake each other), each dropped with some probability; a request may be delivered twice
// (the handler runs twice, the caller takes the first reply). Messages between the two sides
// of a partition, over a link cut one way (blockLink: A hears B, B does not hear A), to a
// crashed node, or to a caller that crashed since are dropped. A paused node (pause: a process
// stopped, as by SIGSTOP) takes nothing meanwhile: requests to it, replies and timeouts for its
// own calls wait, in order, until resume(). A caller
// whose request or reply was lost sees its promise reject after a simulated timeout, as an
// HTTP client's would; a crashed caller's calls never settle. Payloads are copied both ways,
// so no two nodes ever share a buffer or an object.
import type { ObjectId } from "../../src/core/id.ts";
import type { PeerService } from "../../src/replication/peer-service.ts";
import type { Message } from "../../src/core/raft/types.ts";
import type { HeadNotice, HistoryPage, HistoryRequest, PeerListing, PeerTransport, RaftReply, StoredNotice } from "../../src/replication/transport.ts";
import type { StoredObject } from "../../src/store/object-store.ts";
import type { Scheduler, SimEvent, SimRandom } from "./scheduler.ts";

/** One life of a node, from start to crash: what a caller's or responder's liveness is tied to. */
export interface Incarnation {
  readonly address: string;
  readonly number: number;
  alive: boolean;
}

export interface NetworkConfig {
  minDelayMs: number;
  maxDelayMs: number;
  /** How long a caller waits for a reply before giving up. */
  timeoutMs: number;
  /** Probability that one message (request or reply) is lost. */
  dropRate: number;
  /** Probability that a request is delivered a second time. */
  duplicateRate: number;
}

export interface NetworkStats {
  calls: number;
  delivered: number;
  dropped: number;
  droppedByPartition: number;
  droppedAtCrashedNode: number;
  duplicated: number;
  timeouts: number;
  handlerErrors: number;
}

interface Endpoint {
  incarnation: Incarnation;
  service: PeerService;
}

/**
 * A deep copy of a message payload (plain objects, arrays, byte arrays, primitives), as if it
 * had been sent over a wire; far cheaper than structuredClone for the many small messages.
 */
export function copyPayload<T>(value: T): T {
  if (value === null || typeof value !== "object") return value;
  if (value instanceof Uint8Array) return new Uint8Array(value) as T;
  if (Array.isArray(value)) return value.map(copyPayload) as T;
  const prototype = Object.getPrototypeOf(value);
  if (prototype !== Object.prototype && prototype !== null) throw new Error(`cannot send a ${prototype?.constructor?.name ?? "class instance"} between nodes`);
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) out[key] = copyPayload(inner);
  return out as T;
}

type Outcome<T> = { ok: true; value: T } | { ok: false; message: string };

export class Network {
  private readonly endpoints = new Map<string, Endpoint>();
  /** Partition side of each address; an address absent from the map is on side 0. */
  private sides: Map<string, number> | null = null;
  /** Links cut in one direction only, as "from>to": messages from `from` to `to` are dropped. */
  private readonly cutLinks = new Set<string>();
  /** Paused addresses, with what reached each meanwhile (run in order at resume). */
  private readonly paused = new Map<string, (() => void)[]>();
  private callNumber = 0;
  readonly stats: NetworkStats = { calls: 0, delivered: 0, dropped: 0, droppedByPartition: 0, droppedAtCrashedNode: 0, duplicated: 0, timeouts: 0, handlerErrors: 0 };

  constructor(
    private readonly scheduler: Scheduler,
    private readonly random: SimRandom,
    readonly config: NetworkConfig,
  ) {}

  /** Makes a node incarnation reachable at its address. */
  attach(incarnation: Incarnation, service: PeerService): void {
    this.endpoints.set(incarnation.address, { incarnation, service });
  }

  /** Takes an address off the network (a crash): messages to it are dropped from now on. */
  detach(address: string): void {
    this.endpoints.delete(address);
  }

  /** Splits the nodes into groups; messages between groups are dropped until heal(). */
  partition(groups: readonly (readonly string[])[]): void {
    this.sides = new Map();
    groups.forEach((group, side) => group.forEach((address) => this.sides!.set(address, side)));
  }

  heal(): void {
    this.sides = null;
    this.cutLinks.clear();
  }

  get partitioned(): boolean {
    return this.sides !== null || this.cutLinks.size > 0;
  }

  /** Drops every message from `from` to `to` until heal(); the other direction still works. */
  blockLink(from: string, to: string): void {
    this.cutLinks.add(`${from}>${to}`);
  }

  /** The address takes no message, reply or timeout until resume(address). */
  pause(address: string): void {
    if (!this.paused.has(address)) this.paused.set(address, []);
  }

  /** Runs, in order, what reached a paused address meanwhile (each still checks who is alive). */
  resume(address: string): void {
    const held = this.paused.get(address);
    this.paused.delete(address);
    for (const run of held ?? []) run();
  }

  /** A paused node crashed: what waited for it is gone with it. */
  discardPaused(address: string): void {
    this.paused.delete(address);
  }

  isPaused(address: string): boolean {
    return this.paused.has(address);
  }

  /** Runs `run` now, or at resume() when `address` is paused (what a paused node's timers and disk go through too). */
  whenAwake(address: string, run: () => void): void {
    const held = this.paused.get(address);
    if (held) held.push(run);
    else run();
  }

  /** Stops losing and duplicating messages (delays stay). */
  stopFaults(): void {
    this.config.dropRate = 0;
    this.config.duplicateRate = 0;
  }

  /** Whether a message from `from` cannot reach `to` (a partition between them, or that link cut). */
  private separated(from: string, to: string): boolean {
    if (this.cutLinks.size > 0 && this.cutLinks.has(`${from}>${to}`)) return true;
    if (this.sides === null) return false;
    return (this.sides.get(from) ?? 0) !== (this.sides.get(to) ?? 0);
  }

  private delay(): number {
    return this.random.between(this.config.minDelayMs, this.config.maxDelayMs);
  }

  /** The transport a node incarnation replicates through. */
  transportFor(caller: Incarnation): PeerTransport {
    return {
      listFolders: (peer, page) => {
        const sent = copyPayload(page ?? {});
        return this.call<PeerListing>(caller, peer, "listFolders", (s) => s.listFolders(sent));
      },
      history: (peer, request: HistoryRequest) => {
        const sent = copyPayload(request);
        return this.call<HistoryPage>(caller, peer, "history", (s) => s.history(sent));
      },
      download: (peer, ids: readonly ObjectId[]) => {
        const sent = copyPayload([...ids]);
        return this.call<{ objects: StoredObject[]; missing: ObjectId[] }>(caller, peer, "download", (s) => s.download(sent));
      },
      notify: (peer, notice: HeadNotice) => {
        const sent = copyPayload(notice);
        return this.call<void>(caller, peer, "notify", (s) => s.notify(sent));
      },
      // What a push stored so far, so peers fetch it ahead of the head (streamed replication).
      notifyStored: (peer, notice: StoredNotice) => {
        const sent = copyPayload(notice);
        return this.call<void>(caller, peer, "notifyStored", (s) => s.notifyStored(sent));
      },
      // The strong mode's Raft messages, to the peer's driver (through its PeerService, as the HTTP route does).
      raft: (peer, messages: readonly Message[]) => {
        const sent = copyPayload([...messages]);
        return this.call<RaftReply>(caller, peer, "raft", (s) => s.raft(sent));
      },
    };
  }

  private call<T>(caller: Incarnation, to: string, kind: string, handle: (service: PeerService) => T | Promise<T>): Promise<T> {
    // A crashed process sends nothing, and nothing it waits for ever arrives.
    if (!caller.alive) return new Promise<T>(() => {});
    const from = caller.address;
    const number = ++this.callNumber;
    this.stats.calls++;
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      let timeout: SimEvent | null = null;
      timeout = this.scheduler.schedule(this.config.timeoutMs, `timeout #${number} ${kind} ${from}->${to}`, () =>
        this.whenAwake(from, () => {
          if (settled || !caller.alive) return;
          settled = true;
          this.stats.timeouts++;
          reject(new Error(`${kind} to ${to}: no reply within ${this.config.timeoutMs} ms`));
        }),
      );

      const reply = (outcome: Outcome<T>) => {
        if (this.random.chance(this.config.dropRate)) {
          this.stats.dropped++;
          return;
        }
        this.scheduler.schedule(this.delay(), `reply #${number} ${kind} ${to}->${from}`, () => {
          if (settled || !caller.alive) return;
          if (this.separated(to, from)) {
            this.stats.droppedByPartition++;
            return;
          }
          this.whenAwake(from, () => {
            if (settled || !caller.alive) return;
            settled = true;
            this.scheduler.cancel(timeout);
            if (outcome.ok) resolve(outcome.value);
            else reject(new Error(outcome.message));
          });
        });
      };

      const deliver = () => {
        if (this.separated(from, to)) {
          this.stats.droppedByPartition++;
          return;
        }
        if (this.paused.has(to)) {
          this.paused.get(to)!.push(deliverNow);
          return;
        }
        deliverNow();
      };

      const deliverNow = () => {
        const target = this.endpoints.get(to);
        if (!target || !target.incarnation.alive) {
          this.stats.droppedAtCrashedNode++;
          return;
        }
        this.stats.delivered++;
        Promise.resolve()
          .then(() => handle(target.service))
          .then(
            (value) => reply({ ok: true, value: value === undefined ? value : copyPayload(value) }),
            (error) => {
              this.stats.handlerErrors++;
              reply({ ok: false, message: `${to} answered ${kind} with an error: ${(error as Error)?.message ?? String(error)}` });
            },
          );
      };

      const send = (label: string) => {
        if (this.separated(from, to)) {
          this.stats.droppedByPartition++;
          return;
        }
        if (this.random.chance(this.config.dropRate)) {
          this.stats.dropped++;
          return;
        }
        this.scheduler.schedule(this.delay(), `${label} #${number} ${kind} ${from}->${to}`, deliver);
      };

      send("send");
      if (this.random.chance(this.config.duplicateRate)) {
        this.stats.duplicated++;
        send("resend");
      }
    });
  }
}
