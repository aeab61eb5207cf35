// Runs the store's mutating tasks one at a time, in arrival order.
//
// There is one append position, and a batch's index rows must go in after its bytes are flushed;
// with two batches in flight, one could commit rows while the other rewinds the position over
// them after an error. Queuing whole tasks keeps every write path simple.
export class PackWriteQueue {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T> | T): Promise<T> {
    const result = this.tail.then(task);
    // A failed task must not stop the ones queued behind it.
    this.tail = result.catch(() => undefined);
    return result;
  }

  /** Resolves once every task queued so far has finished. */
  async drain(): Promise<void> {
    await this.run(() => undefined);
  }
}
