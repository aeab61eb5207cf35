// Whole-store maintenance (verify re-reads every object, gc marks every kept tree under the
// write lock) runs one at a time per kind, and a request that arrives while one runs shares the
// next run instead of queueing a run of its own. However many requests come at once, there is
// at most one run going and one waiting: a burst of N requests costs two passes, not N (and N
// gc runs queued on the write lock would hold every commit back for all of them).
//
// The waiting run starts after the running one ends, so it covers everything stored before any
// of its requests were made. A request whose options differ from the waiting run's is refused
// (the caller's `busy` error): sharing would answer it with a report of something else.
export class CoalescingRunner<T> {
  private running: Promise<T> | null = null;
  private waiting: { key: string; promise: Promise<T> } | null = null;

  constructor(private readonly busy: () => Error) {}

  /** Runs `task`, or joins the waiting run of the same `key` (options), or refuses. */
  run(key: string, task: () => Promise<T>): Promise<T> {
    if (this.waiting) {
      if (this.waiting.key === key) return this.waiting.promise;
      return Promise.reject(this.busy());
    }
    if (!this.running) return this.start(task);
    const promise = this.running
      .catch(() => undefined)
      .then(() => {
        this.waiting = null;
        return this.start(task);
      });
    this.waiting = { key, promise };
    return promise;
  }

  private start(task: () => Promise<T>): Promise<T> {
    const run = task();
    this.running = run;
    const done = () => {
      if (this.running === run) this.running = null;
    };
    run.then(done, done);
    return run;
  }
}
