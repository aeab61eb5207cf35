// A small async mutex: callers run one at a time, in arrival order.
export class Mutex {
  private tail: Promise<void> = Promise.resolve();
  /** Callers holding or waiting for the mutex. */
  private users = 0;

  /** True when no one holds or waits for it: a map of mutexes by name may forget this one. */
  get idle(): boolean {
    return this.users === 0;
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    const previous = this.tail;
    let release!: () => void;
    this.tail = new Promise<void>((resolve) => (release = resolve));
    this.users++;
    try {
      await previous;
      return await task();
    } finally {
      this.users--;
      release();
    }
  }
}
