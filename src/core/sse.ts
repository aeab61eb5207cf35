// A reader of server-sent events (the text/event-stream format of GET /v1/events), fed with
// text as it arrives, for readers that cannot use EventSource: a browser that must send an
// Authorization header, a test, a watching client. Pure: no I/O.

export interface ServerSentEvent {
  /** The event's id, or null when it carried none (a `gap` report). */
  id: string | null;
  /** `message` when the event named no type. */
  event: string;
  data: string;
}

/** Most characters one event may hold before the reader refuses the stream (a hostile or broken server). */
export const SSE_EVENT_CHARS_MAX = 1 << 20;

export class SseParser {
  private buffer = "";
  private id: string | null = null;
  private event = "";
  private data: string[] = [];
  private dataChars = 0;
  /** The id of the last event that carried one: what a reconnect sends as Last-Event-ID. */
  lastEventId: string | null = null;

  /** Takes the next piece of the stream; returns the events it completed. */
  push(text: string): ServerSentEvent[] {
    this.buffer += text;
    const out: ServerSentEvent[] = [];
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      if (!match) break;
      // A lone \r at the very end may be the first half of \r\n: wait for the next piece.
      if (match[0] === "\r" && match.index === this.buffer.length - 1) break;
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      const event = this.line(line);
      if (event) out.push(event);
    }
    if (this.buffer.length + this.dataChars > SSE_EVENT_CHARS_MAX) throw new Error(`an event of more than ${SSE_EVENT_CHARS_MAX} characters`);
    return out;
  }

  private line(line: string): ServerSentEvent | null {
    if (line === "") {
      if (this.data.length === 0) {
        this.event = "";
        return null;
      }
      const event: ServerSentEvent = { id: this.id, event: this.event || "message", data: this.data.join("\n") };
      if (this.id !== null) this.lastEventId = this.id;
      this.id = null;
      this.event = "";
      this.data = [];
      this.dataChars = 0;
      return event;
    }
    if (line.startsWith(":")) return null;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") {
      this.data.push(value);
      this.dataChars += value.length + 1;
      if (this.dataChars > SSE_EVENT_CHARS_MAX) throw new Error(`an event of more than ${SSE_EVENT_CHARS_MAX} characters`);
    } else if (field === "event") this.event = value;
    else if (field === "id" && !value.includes("\u0000")) this.id = value;
    return null;
  }
}
