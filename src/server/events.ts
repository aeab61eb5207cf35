// GET /v1/events: the node's event log (src/node/events.ts) as server-sent events, or as a
// plain long poll with ?since=N. Behind the client token like every /v1 route; a browser sends
// it with fetch() and reads the stream, since EventSource cannot send a header, and the token
// never goes into a URL.
//
// Bounded: at most EVENT_STREAMS_MAX streams at once (503 beyond), EVENT_STREAMS_PER_TOKEN_MAX
// of them for one stored token (429 beyond; LONG_POLLS_PER_TOKEN_MAX waiting long polls too), each fed from the log at the
// pace its reader takes them (a reader that falls behind the ring is told of the gap, nothing
// queues up for it), at most LONG_POLLS_WAITING_MAX long polls wait at once (503 beyond, so
// each holds a connection and a timer only within that bound), a long poll waits at most
// LONG_POLL_WAIT_MS_MAX, and one answer carries at most EVENTS_PER_REPLY_MAX events.
//
// A token revoked or expired while its stream or long poll is open is cut off: the token is
// checked again before anything more is sent (an event or a keepalive, so at least every
// KEEPALIVE_MS), and the stream closes, a long poll answers 401, without another event.
import type { Context, Hono } from "hono";
import { validateFolderName } from "../core/names.ts";
import type { EventLog, EventsSince, NodeEvent } from "../node/events.ts";
import { UserError } from "../node/node.ts";
import { grantOf, scopedFolders } from "./access.ts";

export const EVENT_STREAMS_MAX = 64;
export const LONG_POLL_WAIT_MS_MAX = 30_000;
export const LONG_POLLS_WAITING_MAX = 256;
/**
 * Streams one stored token may hold open at once (429 beyond), so a token for one folder cannot
 * take every stream of the node from the others; the node's own token is not limited here.
 */
export const EVENT_STREAMS_PER_TOKEN_MAX = 8;
/** Long polls one stored token may have waiting at once (429 beyond), for the same reason. */
export const LONG_POLLS_PER_TOKEN_MAX = 32;
export const EVENTS_PER_REPLY_MAX = 1000;
/** A comment line this often keeps proxies and idle timeouts from closing a quiet stream. */
export const KEEPALIVE_MS = 15_000;

/** An event as the API shows it (the same in a stream's data line and in a long poll's list). */
export function eventJson(event: NodeEvent) {
  return { id: event.id, type: event.type, time: new Date(event.timeMs).toISOString(), folder: event.folder, ...event.data };
}

/** The explicit report of events a reader will never get: those after its id that the ring no longer holds. */
export function gapJson(gap: NonNullable<EventsSince["gap"]>, lastId: number) {
  return { type: "gap", afterId: gap.afterId, firstHeldId: gap.firstHeldId, lastId, reason: gap.reason };
}

/**
 * The folder an object transfer serves, as the client says in X-Dsync-Folder (a pull names the
 * folder it reads first); only a label for the transfer's event, null when absent or not a
 * valid folder name. Objects are shared by content, so the node could not tell by itself.
 */
export function transferFolder(c: Context): string | null {
  const name = c.req.header("x-dsync-folder");
  if (name === undefined || validateFolderName(name) !== undefined) return null;
  // A token limited to some folders labels only transfers of its own: never another folder's events.
  const scope = scopedFolders(c);
  return scope === null || scope.includes(name) ? name : null;
}

function parseEventId(text: string | undefined, what: string): number | undefined {
  if (text === undefined || text === "") return undefined;
  const id = /^\d{1,16}$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(id)) throw new UserError(`${what} must be an event id (a whole number), got ${JSON.stringify(text.slice(0, 40))}`);
  return id;
}

/**
 * `filterFor` says which events a request may see (a token limited to some folders sees only
 * theirs, src/server/access.ts); undefined: all. Ids still count every event, so a reader's
 * place in the log is the same whatever it may see.
 */
export function registerEventRoutes(app: Hono, events: EventLog, filterFor: (c: Context) => ((event: NodeEvent) => boolean) | undefined = () => undefined): void {
  let openStreams = 0;
  let waitingPolls = 0;
  const streamsOfToken = new Map<string, number>();
  const pollsOfToken = new Map<string, number>();
  const count = (map: Map<string, number>, key: string, by: number) => {
    const next = (map.get(key) ?? 0) + by;
    if (next > 0) map.set(key, next);
    else map.delete(key);
  };
  const encoder = new TextEncoder();

  app.get("/v1/events", async (c) => {
    const filter = filterFor(c);
    const { stillValid, tokenId } = grantOf(c);
    const shown = (list: NodeEvent[]) => (filter ? list.filter(filter) : list);
    const since = parseEventId(c.req.query("since"), "since");
    const waitText = c.req.query("wait");
    if (waitText !== undefined && !/^\d{1,9}$/.test(waitText)) throw new UserError("wait must be a number of milliseconds");
    if (since !== undefined) {
      // Long poll: answer at once when there is news, else when some arrives or the wait ends.
      const waitMs = Math.min(waitText === undefined ? LONG_POLL_WAIT_MS_MAX : Number(waitText), LONG_POLL_WAIT_MS_MAX);
      let reply = events.since(since, EVENTS_PER_REPLY_MAX);
      if (reply.events.length === 0 && reply.gap === null && waitMs > 0) {
        if (waitingPolls >= LONG_POLLS_WAITING_MAX) return c.json({ error: `at most ${LONG_POLLS_WAITING_MAX} long polls wait at once; try again later` }, 503);
        if (tokenId !== null && (pollsOfToken.get(tokenId) ?? 0) >= LONG_POLLS_PER_TOKEN_MAX) {
          return c.json({ error: `at most ${LONG_POLLS_PER_TOKEN_MAX} long polls wait at once per token; try again later` }, 429);
        }
        waitingPolls++;
        if (tokenId !== null) count(pollsOfToken, tokenId, 1);
        try {
          await events.waitAfter(since, waitMs, c.req.raw.signal);
        } finally {
          waitingPolls--;
          if (tokenId !== null) count(pollsOfToken, tokenId, -1);
        }
        reply = events.since(since, EVENTS_PER_REPLY_MAX);
        if (!(await stillValid())) return c.json({ error: "the token was revoked or expired while the long poll waited" }, 401);
      }
      return c.json({ events: shown(reply.events).map(eventJson), gap: reply.gap ? gapJson(reply.gap, reply.lastId) : null, lastId: reply.lastId });
    }

    // A stream starts after Last-Event-ID (a reconnecting reader), else after the newest event.
    const resumeFrom = parseEventId(c.req.header("last-event-id"), "Last-Event-ID");
    if (openStreams >= EVENT_STREAMS_MAX) return c.json({ error: `at most ${EVENT_STREAMS_MAX} event streams at once; try again later` }, 503);
    const ofToken = tokenId === null ? 0 : (streamsOfToken.get(tokenId) ?? 0);
    if (ofToken >= EVENT_STREAMS_PER_TOKEN_MAX) return c.json({ error: `at most ${EVENT_STREAMS_PER_TOKEN_MAX} event streams at once per token; close one first` }, 429);
    openStreams++;
    if (tokenId !== null) count(streamsOfToken, tokenId, 1);
    let cursor = resumeFrom ?? events.lastId;
    let first = true;
    const signal = c.req.raw.signal;
    let released = false;
    const release = () => {
      if (!released) {
        openStreams--;
        if (tokenId !== null) count(streamsOfToken, tokenId, -1);
      }
      released = true;
    };
    let checkedAt = performance.now();
    const cutOff = (controller: ReadableStreamDefaultController<Uint8Array>) => {
      release();
      controller.close();
    };
    const stream = new ReadableStream<Uint8Array>(
      {
        // Called when the reader wants more: the stream holds nothing the reader has not asked for.
        async pull(controller) {
          let text = "";
          if (first) {
            first = false;
            // Tells the browser how long to wait before reconnecting, and says the stream is open.
            text += `retry: 1000\n: dsync events after ${cursor}\n\n`;
          }
          for (;;) {
            if (signal.aborted || events.isClosed) {
              if (text) controller.enqueue(encoder.encode(text));
              release();
              controller.close();
              return;
            }
            const reply = events.since(cursor, EVENTS_PER_REPLY_MAX);
            if (reply.gap) text += `event: gap\ndata: ${JSON.stringify(gapJson(reply.gap, reply.lastId))}\n\n`;
            for (const event of shown(reply.events)) text += `id: ${event.id}\nevent: ${event.type}\ndata: ${JSON.stringify(eventJson(event))}\n\n`;
            // After a gap for an unknown id with nothing held, the reader's place is the newest id.
            cursor = reply.events.at(-1)?.id ?? (reply.gap ? reply.lastId : cursor);
            if (text) break;
            const before = cursor;
            await events.waitAfter(before, KEEPALIVE_MS, signal);
            // Events of other folders alone send nothing, so the token is checked here too.
            if (performance.now() - checkedAt >= KEEPALIVE_MS) {
              if (!(await stillValid())) return cutOff(controller);
              checkedAt = performance.now();
            }
            if (events.lastId === before && !signal.aborted && !events.isClosed) {
              text = ": keepalive\n\n";
              break;
            }
          }
          // The token may have been revoked or have expired while the stream waited.
          if (!(await stillValid())) return cutOff(controller);
          checkedAt = performance.now();
          controller.enqueue(encoder.encode(text));
        },
        cancel() {
          release();
        },
      },
      { highWaterMark: 0 },
    );
    return new Response(stream, {
      headers: {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-store",
        "x-accel-buffering": "no",
      },
    });
  });
}
