/**
 * A write-rate guard that holds from the SERVER's point of view: at most `cap` requests arrive at the
 * server in any rolling window of `windowMs`.
 *
 * Limiting request *starts* (p-queue's `intervalCap` + `strict`) is not enough: a request arrives some
 * time after it starts — a new TLS connection alone can take a few hundred ms — so starts spaced exactly
 * one window apart can still land closer together at the server. Measured against the fake's request log,
 * p-queue strict mode exceeded a 5/s cap as soon as fresh connections were involved.
 *
 * Rule used here instead: a request counts against the window from its start until `windowMs` after its
 * response. A new request starts only while fewer than `cap` requests are in flight or ended within the
 * last window. Any request that arrives in a server window [a, a+W) has started by then and ends after a,
 * so when the last of them started, all the others were counted — hence never more than `cap` per window.
 * The price is that each request holds its slot for its latency on top of the window (a 20 ms request at
 * 200/s: about 196/s).
 */
export class RollingWindowGate {
  private inFlight = 0;
  /** End times within the last window, oldest first. */
  private ends: number[] = [];
  private waiters: Array<{ go: () => void; fail: (err: unknown) => void }> = [];
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly cap: number,
    private readonly windowMs = 1000,
  ) {
    if (!(cap >= 1)) throw new RangeError(`rate cap must be >= 1, got ${cap}`);
  }

  /** Runs `fn` once a slot is free; the slot is held until `windowMs` after `fn` settles. */
  async run<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    await this.acquire(signal);
    try {
      return await fn();
    } finally {
      this.inFlight--;
      this.ends.push(Date.now());
      this.pump();
    }
  }

  /** Rejects every waiting caller (on close). */
  clear(reason: unknown = new Error('rate gate closed')): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const w of this.waiters.splice(0)) w.fail(reason);
  }

  private used(now: number): number {
    while (this.ends.length && this.ends[0]! <= now - this.windowMs) this.ends.shift();
    return this.inFlight + this.ends.length;
  }

  private acquire(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    if (this.waiters.length === 0 && this.used(Date.now()) < this.cap) {
      this.inFlight++;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const waiter = {
        go: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        fail: (err: unknown) => {
          signal?.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      const onAbort = () => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(signal!.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
      this.pump();
    });
  }

  private pump(): void {
    const now = Date.now();
    while (this.waiters.length && this.used(now) < this.cap) {
      this.inFlight++;
      this.waiters.shift()!.go();
    }
    if (this.waiters.length && this.ends.length && !this.timer) {
      // Wake when the oldest ended request leaves the window (in-flight ones wake us when they end).
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.pump();
      }, this.ends[0]! + this.windowMs - now + 1);
    }
  }
}
