import PQueue from 'p-queue';
import { PbxsyncError, RetryableError, TerminalError, describeError, isRetryable } from '../errors/index.js';
import { redact, type Logger } from '../log.js';
import { SECRET_FIELDS, newUserFields, keyString, type PbxUser, type UserFieldName, type UserFields } from '../model/index.js';
import type { StateStore } from '../state/store.js';
import type { CreatedUser, CreateUserInput, Target } from '../targets/types.js';
import { sameField } from './fields.js';
import type { Journal } from './journal.js';
import { summarise } from './plan.js';
import { MASK } from './serialize.js';
import { auditEntry, type AuditEntry, type AuditLog } from './audit.js';
import type { Operation, OperationKind, Plan, PlanSummary } from './types.js';

/** Options of {@link apply}. */
export interface ApplyOptions {
  target: Target;
  state: StateStore;
  journal: Journal;
  logger: Logger;
  /** Parallel writes; capped by `target.limits.concurrency`. */
  concurrency?: number;
  /** Retries of a RetryableError per operation (default 5). */
  retries?: number;
  /** Operations between durability checkpoints (commit, bindings, journal 'done'); default 1000. */
  checkpointEvery?: number;
  /** Abort (SIGTERM): no new operations start, in-flight ones finish, the checkpoint runs. */
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
  /** Write nothing anywhere; the report lists every operation as skipped. */
  dryRun?: boolean;
  /** First backoff delay in ms (default 500); doubles per attempt, with jitter. */
  retryBaseMs?: number;
  /** Longest single backoff delay in ms (default 30,000). */
  retryMaxMs?: number;
  /** Clock for binding timestamps (default: the system clock). */
  now?: () => Date;
  /** Where each checkpoint's applied and failed operations are recorded, once durable (DESIGN §6.7). */
  audit?: AuditLog;
}

/** What apply did. */
export interface ApplyReport {
  applied: Operation[];
  /** Operations that failed, each with a message naming the user and, when known, the field. */
  failed: Array<{ op: Operation; error: string }>;
  /** Counts of what was applied; `errors` = record issues of the plan + failed operations. */
  summary: PlanSummary;
  /** Stopped early by the abort signal. */
  interrupted: boolean;
  /** Operations never started (abort, dry run). */
  skipped: Operation[];
  dryRun: boolean;
}

/**
 * Phases, in order. Removals first so that e-mails, DIDs and MACs they free are free before another user
 * takes them; updates before adopts and creates for the same reason. Conflicts are never applied.
 */
export const PHASES: ReadonlyArray<readonly OperationKind[]> = [['disable', 'delete'], ['update', 'enable'], ['adopt'], ['create']];


interface Outcome {
  op: Operation;
  /**
   * Id and extension of the user a create made: only these are bound. WARNING: keeping the whole PbxUser
   * the target returned held a full copy of every created user (options included) until the checkpoint.
   */
  created?: { id: string; extension: string };
}

/**
 * Applies a plan to the target. Refuses a held plan. Departments first, then the phases of {@link PHASES},
 * each through one concurrency- and rate-limited queue (creates go to Target.createUsers a batch at a time
 * when the target offers it and no write rate applies); RetryableErrors are retried with exponential
 * backoff and jitter (honouring Retry-After), TerminalError and ConflictError are not. One operation's
 * failure never stops the others; it is reported.
 *
 * Durability (what makes a crash at any point converge, DESIGN §6 invariant 5):
 * 1. each operation's 'start' is journaled and flushed before its write;
 * 2. every `checkpointEvery` operations and at the end: `target.commit()`, then the bindings are saved, then
 *    the 'done' records are written. A crash before the bindings are saved leaves 'start' without 'done', and
 *    the next plan recovers the user (PlanState.pendingCreates) instead of creating it again;
 * 3. a source's cursor (and its last good count) is saved only when all its operations were applied;
 * 4. writes run at most two checkpoints ahead of the last durable one, so a fast target cannot pile up
 *    thousands of un-checkpointed writes (and their memory) in front of a slow commit;
 * 5. a checkpoint's commit may run while the previous checkpoint saves its bindings (a crash in between is
 *    the case of step 2); its own bindings and 'done' records come after both.
 */
export async function apply(plan: Plan, options: ApplyOptions): Promise<ApplyReport> {
  if (plan.held) {
    throw new PbxsyncError(`plan ${plan.runId} is held and was not applied: ${plan.held}`, { code: 'HELD' });
  }
  const ops = plan.operations.filter((o) => o.kind !== 'conflict');
  if (options.dryRun) {
    return { applied: [], failed: [], skipped: ops, interrupted: false, dryRun: true, summary: appliedSummary(plan, [], 0) };
  }
  return new Applier(plan, ops, options).run();
}

function appliedSummary(plan: Plan, applied: Operation[], failed: number): PlanSummary {
  const s = summarise(applied, plan.summary.unchanged, plan.summary.errors + failed);
  s.conflicts = plan.summary.conflicts;
  return s;
}

/** True when a saved plan's masking replaced a secret value in these fields. */
function maskedSecret(fields: Partial<UserFields>): boolean {
  for (const f of SECRET_FIELDS) if (fields[f] === MASK) return true;
  return false;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason ?? new Error('aborted'));
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason ?? new Error('aborted'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Checkpoints that may be pending while new operations still start (see Applier.run). */
const CHECKPOINTS_AHEAD = 2;

/** Users per Target.createUsers call at most (fewer when checkpoints come more often). */
const CREATE_BATCH = 250;

class Applier {
  private readonly target: Target;
  private readonly queue: PQueue;
  private readonly concurrency: number;
  private readonly retries: number;
  private readonly checkpointEvery: number;
  private readonly now: () => Date;
  /** A writes-per-second limit applies: every write goes through the queue's rate window. */
  private readonly paced: boolean;

  private readonly applied: Operation[] = [];
  private readonly failed: Array<{ op: Operation; error: string }> = [];
  private readonly skipped: Operation[] = [];
  /** Sources with an operation that failed retryably or never ran: their cursors stay where they are. */
  private readonly blocked = new Set<string>();

  /** Outcomes since the last checkpoint, waiting to be made durable. */
  private pendingDone: Outcome[] = [];
  private pendingFailed: Array<{ op: Operation; error: string; retryable: boolean }> = [];
  private checkpoints: Promise<void> = Promise.resolve();
  /** The commit stage of the last checkpoint scheduled: true when its commit succeeded. */
  private commits: Promise<boolean> = Promise.resolve(true);
  /** Checkpoints scheduled and not finished yet, oldest first (they run one after the other). */
  private readonly checkpointsPending: Promise<void>[] = [];
  private checkpointError: unknown;
  private done = 0;
  private warnedMask = false;

  constructor(
    private readonly plan: Plan,
    private readonly ops: Operation[],
    private readonly options: ApplyOptions,
  ) {
    this.target = options.target;
    const limit = Math.max(1, this.target.limits.concurrency);
    this.concurrency = Math.max(1, Math.min(options.concurrency ?? limit, limit));
    this.retries = options.retries ?? 5;
    this.checkpointEvery = Math.max(1, options.checkpointEvery ?? 1000);
    this.now = options.now ?? (() => new Date());
    const wps = this.target.limits.writesPerSecond;
    // Strict (sliding window) mode: never more than the cap in any rolling second, not just per fixed window.
    const rate =
      wps && wps > 0
        ? wps >= 1
          ? { intervalCap: Math.floor(wps), interval: 1000, strict: true }
          : { intervalCap: 1, interval: Math.ceil(1000 / wps), strict: true }
        : {};
    this.queue = new PQueue({ concurrency: this.concurrency, ...rate });
    this.paced = 'intervalCap' in rate;
  }

  async run(): Promise<ApplyReport> {
    const { logger, signal } = this.options;
    const runnable = await this.ensureDepartments();

    let interrupted = false;
    for (const phase of PHASES) {
      const phaseOps = runnable.filter((o) => phase.includes(o.kind));
      if (phase.length === 1 && phase[0] === 'create' && this.target.createUsers && !this.paced) {
        if (await this.runCreateBatches(phaseOps)) interrupted = true;
        continue;
      }
      // `concurrency` lanes take the next operation as each finishes: never more in flight, and no promise
      // per waiting operation (a Promise.race over the in-flight set per operation cost more than the
      // embedded store's writes).
      let next = 0;
      const lane = async (): Promise<void> => {
        while (next < phaseOps.length) {
          const op = phaseOps[next++]!;
          // Writes run at most a few checkpoints ahead of durability: a crash loses little, memory stays flat,
          // and a target whose commit is slow (the embedded store sends welcome mails there) paces the run.
          while (this.checkpointsPending.length > CHECKPOINTS_AHEAD) await this.checkpointsPending[0];
          // Checked right before each start: the abort may have come while this lane waited or worked.
          if (signal?.aborted) {
            interrupted = true;
            this.skip(op);
            continue;
          }
          await this.runOp(op);
        }
      };
      const lanes: Promise<void>[] = [];
      for (let i = 0; i < Math.min(this.concurrency, phaseOps.length); i++) lanes.push(lane());
      await Promise.all(lanes);
      if (signal?.aborted) interrupted = true;
    }

    await this.checkpoints;
    this.advanceCursors();
    this.scheduleCheckpoint();
    await this.checkpoints;
    if (this.checkpointError) throw this.checkpointError;
    if (!interrupted) await this.options.journal.compact();

    const report: ApplyReport = {
      applied: this.applied,
      failed: this.failed,
      skipped: this.skipped,
      interrupted,
      dryRun: false,
      summary: appliedSummary(this.plan, this.applied, this.failed.length),
    };
    logger.info('apply finished', { runId: this.plan.runId, ...report.summary, failed: this.failed.length, interrupted });
    return report;
  }

  private skip(op: Operation): void {
    this.skipped.push(op);
    if (op.key) this.blocked.add(op.key.source);
  }

  /** Creates missing departments; when that fails, the operations that need them fail too (not the others). */
  private async ensureDepartments(): Promise<Operation[]> {
    const names = this.plan.departments;
    if (names.length === 0) return this.ops;
    try {
      await this.withRetry(() => this.target.ensureDepartments(names));
      return this.ops;
    } catch (err) {
      const wanted = new Set(names.map((n) => n.toLowerCase()));
      const needs = (op: Operation): boolean =>
        [op.after?.department, ...(op.after?.extraDepartments ?? [])].some((d) => !!d && wanted.has(d.toLowerCase()));
      const message = `could not create departments ${names.join(', ')}: ${redact(describeError(err))}`;
      this.options.logger.error(message, { runId: this.plan.runId });
      for (const op of this.ops.filter(needs)) this.fail(op, message, isRetryable(err));
      return this.ops.filter((op) => !needs(op));
    }
  }

  /** Runs `fn` with retries; `firstError` counts as the first attempt's failure (it happened elsewhere). */
  private async withRetry<T>(fn: () => Promise<T>, firstError?: unknown): Promise<T> {
    const { signal } = this.options;
    const base = this.options.retryBaseMs ?? 500;
    const max = this.options.retryMaxMs ?? 30_000;
    for (let attempt = 0; ; attempt++) {
      try {
        if (attempt === 0 && firstError !== undefined) throw firstError;
        // The run loop already bounds the operations in flight; the queue is only needed to pace writes.
        return await (this.paced ? this.queue.add(fn) : fn());
      } catch (err) {
        if (!isRetryable(err) || attempt >= this.retries || signal?.aborted) throw err;
        const after = err instanceof RetryableError ? err.retryAfterMs : undefined;
        const exp = Math.min(max, base * 2 ** attempt);
        // Jitter spreads the retries of many parallel operations hit by the same 429.
        const delay = after !== undefined ? Math.max(0, after) : exp / 2 + Math.random() * (exp / 2);
        this.options.logger.debug('retrying', { runId: this.plan.runId, attempt: attempt + 1, delay, error: redact(describeError(err)) });
        try {
          await sleep(delay, signal);
        } catch {
          throw new RetryableError(`interrupted before retry ${attempt + 1}: ${describeError(err)}`, { cause: err });
        }
      }
    }
  }

  /**
   * Creates through Target.createUsers, a batch at a time: the batch's starts are journaled in one write, one
   * call creates its users, and each result counts like a createUser of its own. A user refused retryably
   * gets the per-operation path and its retries. Returns true when the abort signal stopped it.
   */
  private async runCreateBatches(ops: Operation[]): Promise<boolean> {
    const { journal, signal } = this.options;
    const size = Math.max(1, Math.min(this.checkpointEvery, CREATE_BATCH));
    for (let i = 0; i < ops.length; i += size) {
      while (this.checkpointsPending.length > CHECKPOINTS_AHEAD) await this.checkpointsPending[0];
      if (signal?.aborted) {
        for (let k = i; k < ops.length; k++) this.skip(ops[k]);
        return true;
      }
      const batch = ops.slice(i, i + size);
      for (const op of batch) journal.start(this.plan.runId, op);
      let results: Array<CreatedUser | Error>;
      try {
        await journal.flushStarts();
        results = await this.withRetry(() => this.target.createUsers!(batch.map((op) => this.createInput(op))));
      } catch (err) {
        for (const op of batch) this.failOp(op, err);
        this.progress(batch.length);
        continue;
      }
      const retry: Array<{ op: Operation; error: Error }> = [];
      for (let k = 0; k < batch.length; k++) {
        const op = batch[k];
        const result = results[k];
        if (result instanceof Error) {
          if (isRetryable(result)) retry.push({ op, error: result });
          else this.failOp(op, result);
        } else if (result) {
          this.applied.push(op);
          // The result as it is (a CreatedUser): no copy per user.
          this.pendingDone.push({ op, created: result });
        } else {
          this.failOp(op, new TerminalError('the target returned no result for this user'));
        }
      }
      this.progress(batch.length - retry.length);
      // Backoff (and Retry-After) as if the batch call had been this user's first attempt.
      for (const { op, error } of retry) await this.runOp(op, error);
    }
    return signal?.aborted ?? false;
  }

  /** Counts finished operations, reports progress, and checkpoints when enough are waiting. */
  private progress(count: number): void {
    this.done += count;
    this.options.onProgress?.(this.done, this.ops.length);
    if (this.pendingDone.length + this.pendingFailed.length >= this.checkpointEvery) this.scheduleCheckpoint();
  }

  /** One operation through the target's single-user calls; `firstError`: its first attempt already failed so. */
  private async runOp(op: Operation, firstError?: unknown): Promise<void> {
    const { journal, logger } = this.options;
    journal.start(this.plan.runId, op);
    try {
      await journal.flushStarts();
      const user = await this.withRetry(() => this.write(op), firstError);
      this.applied.push(op);
      this.pendingDone.push({ op, created: user && { id: user.id, extension: user.extension } });
      // WARNING: winston runs the whole format chain (redaction, JSON) for every call, also below its level;
      // once per operation that is a noticeable share of a 100,000-user run. (Loggers made for tests may
      // lack the level check; they get every call.)
      if (logger.isDebugEnabled?.() ?? true) logger.debug('applied', { runId: this.plan.runId, op: op.id, kind: op.kind, extension: op.extension });
    } catch (err) {
      this.failOp(op, err);
    }
    this.progress(1);
  }

  /** Fails an operation with a message naming the user and, when known, the field. */
  private failOp(op: Operation, err: unknown): void {
    const field = err instanceof TerminalError && err.field ? ` field ${err.field}:` : '';
    const who = `${op.kind} ${op.extension}${op.name ? ` ${op.name}` : ''}${op.key ? ` (${keyString(op.key)})` : ''}`;
    this.fail(op, `${who}:${field} ${redact(describeError(err))}`, isRetryable(err));
  }

  private fail(op: Operation, error: string, retryable: boolean): void {
    this.failed.push({ op, error });
    this.pendingFailed.push({ op, error, retryable });
    if (retryable && op.key) this.blocked.add(op.key.source);
    this.options.logger.warn('operation failed', { runId: this.plan.runId, op: op.id, error });
  }

  /** Field values to send: those that differ from `before`, without masked secrets from a saved plan. */
  private changes(op: Operation): Partial<UserFields> {
    const after = op.after ?? {};
    // A create sends everything: its `after` as it is, unless a saved plan masked a secret in it.
    if (!op.before && !maskedSecret(after)) return after;
    const out: Array<[string, unknown]> = [];
    for (const [k, v] of Object.entries(op.after ?? {})) {
      const f = k as UserFieldName;
      if (SECRET_FIELDS.has(f) && v === MASK) {
        if (!this.warnedMask) this.options.logger.warn('plan file has masked secrets; they are not written', { runId: this.plan.runId });
        this.warnedMask = true;
        continue;
      }
      if (op.before && f in op.before && sameField(f, op.before[f], v)) continue;
      out.push([f, v]);
    }
    // fromEntries, not keyed stores: see normaliseNewUser (a hash-table object per operation otherwise).
    return Object.fromEntries(out) as Partial<UserFields>;
  }

  private async write(op: Operation): Promise<PbxUser | undefined> {
    switch (op.kind) {
      case 'create':
        return this.target.createUser(this.createInput(op));
      case 'update':
      case 'enable':
      case 'disable':
      case 'adopt': {
        const changes = this.changes(op);
        // Nothing differs (an adoption without changes, a user already disabled by hand): a no-op writes nothing.
        if (Object.keys(changes).length) await this.target.updateUser(this.userId(op), changes);
        return undefined;
      }
      case 'delete': {
        const [result] = await this.target.deleteUsers([this.userId(op)]);
        if (result?.error) throw new TerminalError(`delete refused: ${result.error}`);
        return undefined;
      }
      default:
        throw new TerminalError(`operation ${op.id} cannot be applied`);
    }
  }

  private createInput(op: Operation): CreateUserInput {
    return Object.assign(newUserFields(), this.changes(op), { extension: op.extension, sendWelcome: op.sendWelcome ?? false });
  }

  private userId(op: Operation): string {
    if (!op.userId) throw new TerminalError(`operation ${op.id} has no user id`);
    return op.userId;
  }

  /** Saves each source's cursor and last good count when all of its operations were applied. */
  private advanceCursors(): void {
    const { state } = this.options;
    for (const s of this.plan.sources) {
      if (this.blocked.has(s.source)) continue;
      if (s.cursor !== undefined) state.setCursor(s.source, s.cursor);
      if (s.mode === 'full' && s.complete) state.setLastGoodCount(s.source, s.count);
    }
  }

  /**
   * Takes the outcomes so far (synchronously, so they are counted once) and chains their checkpoint after
   * the previous one. Every write in the batch returned before its commit() is called.
   */
  private scheduleCheckpoint(): void {
    const done = this.pendingDone;
    const failed = this.pendingFailed;
    this.pendingDone = [];
    this.pendingFailed = [];
    // Two stages: this checkpoint's commit follows the previous commit only, so it runs while the previous
    // checkpoint still saves its bindings (two syncs of different files at once: ~0.2 s of a 100,000-user
    // import was waiting for them one after the other). Its bindings and 'done' records still follow its own
    // commit and the previous checkpoint's records. A crash between a commit and the bindings of an earlier
    // checkpoint is the case of step 2 above: those users are recovered, not created again.
    const committed = this.commits.then(() => this.commitStage());
    this.commits = committed;
    const next = Promise.all([committed, this.checkpoints]).then(([ok]) => (ok ? this.recordStage(done, failed) : undefined));
    this.checkpoints = next;
    this.checkpointsPending.push(next);
    void next.finally(() => this.checkpointsPending.shift());
  }

  /** A checkpoint's first stage: the starts flushed, the target committed. False (the error kept) when it failed. */
  private async commitStage(): Promise<boolean> {
    const { target, journal } = this.options;
    try {
      await journal.flushStarts();
      await target.commit();
      return true;
    } catch (err) {
      this.checkpointError ??= new PbxsyncError(`checkpoint of run ${this.plan.runId} failed: ${describeError(err)}`, { cause: err });
      return false;
    }
  }

  /** A checkpoint's second stage, after its commit: bindings saved → 'done' records written; see {@link apply}. */
  private async recordStage(done: Outcome[], failed: Array<{ op: Operation; error: string; retryable: boolean }>): Promise<void> {
    const { state, journal } = this.options;
    try {
      const at = this.now().toISOString();
      for (const { op, created } of done) {
        if (!op.key) continue;
        if (op.kind === 'create' && created) {
          state.putBinding({ key: op.key, userId: created.id, extension: created.extension, boundAt: at });
        } else if (op.kind === 'adopt' && op.userId) {
          state.putBinding({ key: op.key, userId: op.userId, extension: op.extension, boundAt: at });
        } else if (op.kind === 'delete') {
          state.removeBinding(op.key);
        } else if (op.kind === 'disable' && !op.mapped) {
          // A re-disable keeps the first date: the grace period counts from when pbxsync first disabled it.
          if (!state.binding(op.key)?.disabledAt) state.setDisabledAt(op.key, at);
        } else if (op.kind === 'enable') {
          state.setDisabledAt(op.key, undefined);
        }
      }
      await state.save();
      for (const { op } of done) journal.done(this.plan.runId, op);
      for (const f of failed) journal.failed(this.plan.runId, f.op, f.error, f.retryable);
      await journal.flushCompletions();
      await this.audit(at, done, failed);
    } catch (err) {
      this.checkpointError ??= new PbxsyncError(`checkpoint of run ${this.plan.runId} failed: ${describeError(err)}`, { cause: err });
    }
  }

  /** Records a checkpoint's outcomes in the audit log; a log that cannot be written is warned about, not fatal. */
  private async audit(at: string, done: Outcome[], failed: Array<{ op: Operation; error: string }>): Promise<void> {
    const { audit, logger } = this.options;
    if (!audit) return;
    try {
      const entries: AuditEntry[] = [];
      for (const { op, created } of done) entries.push(auditEntry(this.plan, op, { at, userId: created?.id }));
      for (const f of failed) entries.push(auditEntry(this.plan, f.op, { at, error: f.error }));
      await audit.append(entries);
    } catch (err) {
      logger.warn('could not write the audit log', { runId: this.plan.runId, dir: audit.dir, error: describeError(err) });
    }
  }
}
