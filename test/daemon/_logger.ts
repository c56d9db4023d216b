import type { Logger } from '../../src/log.js';

/** One captured log call. */
export interface LogLine {
  level: string;
  message: string;
  meta?: Record<string, unknown>;
}

/**
 * A logger that records calls, with a way to wait for a line: tests wait for events ("skipped a tick")
 * instead of sleeping for a guessed duration.
 */
export function captureLogger(): { logger: Logger; lines: LogLine[]; waitFor: (match: (l: LogLine) => boolean) => Promise<LogLine> } {
  const lines: LogLine[] = [];
  const waiters: Array<{ match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }> = [];
  const log = (level: string) => (message: string, meta?: Record<string, unknown>) => {
    const line = { level, message, meta };
    lines.push(line);
    for (const w of [...waiters]) {
      if (w.match(line)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  };
  const logger = {
    info: log('info'),
    warn: log('warn'),
    error: log('error'),
    debug: log('debug'),
    verbose: log('verbose'),
    child: () => logger,
  } as unknown as Logger;
  const waitFor = (match: (l: LogLine) => boolean) => {
    const seen = lines.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise<LogLine>((resolve) => waiters.push({ match, resolve }));
  };
  return { logger, lines, waitFor };
}

/** A promise with its resolve function outside, to hold a task at a known point. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** Lets every pending promise callback and I/O callback run once. */
export function settle(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}
