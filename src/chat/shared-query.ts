/**
 * One query shared by every caller that asks while it has not started yet.
 *
 * A caller must get an answer read *after* it asked (a joiner's presence must include the joiner).
 * So a caller that asks while a query is already running waits for the next one, and everybody who
 * asks meanwhile shares that next one: under a join storm of N members a room costs a few queries
 * instead of N, each of them O(room size) (measured with `roomcast bench --workload join-storm`).
 */
export class SharedQuery<T> {
  private running: Promise<T> | undefined;
  private next: Promise<T> | undefined;

  constructor(private readonly query: () => Promise<T>) {}

  get(): Promise<T> {
    if (!this.running) return this.start();
    this.next ??= this.running.then(
      () => this.startNext(),
      () => this.startNext(),
    );
    return this.next;
  }

  private startNext(): Promise<T> {
    this.next = undefined;
    return this.start();
  }

  private start(): Promise<T> {
    const running = this.query();
    this.running = running;
    const done = () => {
      if (this.running === running) this.running = undefined;
    };
    running.then(done, done);
    return running;
  }
}
