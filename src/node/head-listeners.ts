// Who hears of a folder's head moving (a push, a restore, a replication merge or fast-forward):
// the replicator's notices, the folder membership, the event streams. A listener that throws is
// logged and the others still hear.
import type { ObjectId } from "../core/id.ts";

export type HeadListener = (folder: string, head: ObjectId) => void;

export class HeadListeners {
  private readonly listeners: HeadListener[] = [];

  /** Adds a listener; the returned function removes it. */
  add(listener: HeadListener): () => void {
    this.listeners.push(listener);
    return () => {
      const at = this.listeners.indexOf(listener);
      if (at !== -1) this.listeners.splice(at, 1);
    };
  }

  /** Tells every listener, in the order they were added (a listener added meanwhile waits for the next move). */
  changed(folder: string, head: ObjectId): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(folder, head);
      } catch (error) {
        console.error("dsync: head listener failed:", error);
      }
    }
  }
}
