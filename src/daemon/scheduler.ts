import cron, { type ScheduledTask } from 'node-cron';
import { describeError } from '../errors/index.js';
import type { Logger } from '../log.js';

/** A unit of scheduled or exclusive work. It should stop early (or reach a safe point) once `signal` aborts. */
export type ScheduledWork<T = void> = (signal: AbortSignal) => Promise<T>;

/** Options of createScheduler. */
export interface SchedulerOptions {
  /** IANA time zone for every cron expression; default the system's. */
  timezone?: string;
  logger: Logger;
}

/** Cron jobs plus per-key mutual exclusion, with a stop that waits for the work in flight. */
export interface Scheduler {
  /**
   * Runs `task` on every tick of `cron`. A tick that comes while the previous run of the same job is still
   * going is skipped (and logged): polls never pile up. Errors are logged, never thrown: one failing job
   * must not stop the daemon. Throws on an invalid cron expression, a duplicate name, or after stop().
   */
  every(name: string, cron: string, task: ScheduledWork): void;
  /** Runs job `name` now, as a tick would. False when it was skipped (already running, stopped). */
  trigger(name: string): Promise<boolean>;
  /**
   * Runs `task` when no other task with the same key runs, waiting its turn (first come, first served):
   * a dropped file waits for the poll of its source instead of being skipped. Resolves to the task's result,
   * or undefined when the scheduler stopped before the task could start. The task's errors reject.
   */
  runExclusive<T>(key: string, task: ScheduledWork<T>): Promise<T | undefined>;
  /** Aborted by stop(). */
  readonly signal: AbortSignal;
  /**
   * Stops the cron jobs, aborts the signal, lets queued exclusive tasks resolve undefined, and waits for the
   * tasks already running (how SIGTERM finishes the operation in flight). Idempotent.
   */
  stop(): Promise<void>;
}

interface Job {
  cron: ScheduledTask;
  task: ScheduledWork;
  running?: Promise<void>;
}

/** Creates a scheduler on node-cron. */
export function createScheduler(options: SchedulerOptions): Scheduler {
  const logger = options.logger;
  const controller = new AbortController();
  const jobs = new Map<string, Job>();
  const inFlight = new Set<Promise<unknown>>();
  // Tail of the queue of each exclusive key; each entry resolves (never rejects) when its task is done.
  const queues = new Map<string, Promise<void>>();
  let stopped = false;

  const track = <T>(p: Promise<T>): Promise<T> => {
    inFlight.add(p);
    const forget = () => inFlight.delete(p);
    p.then(forget, forget);
    return p;
  };

  // node-cron logs missed ticks and the like to the console by default; route them through our logger.
  const cronLogger = {
    info: (m: string) => logger.debug(m, { component: 'node-cron' }),
    warn: (m: string) => logger.debug(m, { component: 'node-cron' }),
    error: (m: string | Error) => logger.warn(String(m), { component: 'node-cron' }),
    debug: (m: string | Error) => logger.debug(String(m), { component: 'node-cron' }),
  };

  const trigger = async (name: string): Promise<boolean> => {
    const job = jobs.get(name);
    if (!job) throw new Error(`no scheduled job named "${name}"`);
    if (stopped) return false;
    if (job.running) {
      logger.info('skipped a tick: the previous run is still going', { job: name });
      return false;
    }
    const run = (async () => {
      try {
        await job.task(controller.signal);
      } catch (err) {
        logger.error('scheduled job failed', { job: name, error: describeError(err) });
      } finally {
        job.running = undefined;
      }
    })();
    job.running = run;
    await track(run);
    return true;
  };

  const every = (name: string, expression: string, task: ScheduledWork): void => {
    if (stopped) throw new Error(`cannot schedule "${name}": the scheduler is stopped`);
    if (jobs.has(name)) throw new Error(`a job named "${name}" is already scheduled`);
    if (!cron.validate(expression)) throw new Error(`invalid cron expression "${expression}" for job "${name}"`);
    const scheduled = cron.schedule(
      expression,
      () => {
        void trigger(name);
      },
      { name, timezone: options.timezone, logger: cronLogger },
    );
    jobs.set(name, { cron: scheduled, task });
  };

  const runExclusive = <T>(key: string, task: ScheduledWork<T>): Promise<T | undefined> => {
    if (stopped) return Promise.resolve(undefined);
    const previous = queues.get(key) ?? Promise.resolve();
    let release!: () => void;
    const done = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => done);
    queues.set(key, tail);
    const run = (async () => {
      await previous;
      try {
        if (stopped) return undefined;
        return await task(controller.signal);
      } finally {
        release();
        if (queues.get(key) === tail) queues.delete(key);
      }
    })();
    return track(run);
  };

  const stop = async (): Promise<void> => {
    if (!stopped) {
      stopped = true;
      for (const job of jobs.values()) await job.cron.destroy();
      controller.abort();
      logger.info('scheduler stopping', { running: inFlight.size });
    }
    while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
  };

  return { every, trigger, runExclusive, signal: controller.signal, stop };
}
