import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Engine } from './engine.js';
import { readSource, type MappedRead } from './read.js';
import type { ActualState, Plan, PlanState } from '../reconcile/types.js';
import type { PbxUser } from '../model/index.js';
import { computeBasis, plan as buildPlan } from '../reconcile/plan.js';
import { applyGuards } from '../reconcile/guards.js';
import { apply, type ApplyReport } from '../reconcile/apply.js';
import { acquireLock } from '../state/lock.js';
import type { HeldPlan } from '../state/store.js';
import { checkUnchanged, recordConverged, skippedRun } from './unchanged.js';
import { recordLastApplied, recordedInputs } from './lastApplied.js';
import { EXIT, UsageError, asStorageError, describeError, exitCodeOfError } from '../errors/index.js';
import type { Target } from '../targets/types.js';
import { collectGarbage } from '../util/memory.js';
import { keepInputs, plansDir, pruneOldPlans, releasePlanFiles, savePlan } from './plans.js';

/** What to reconcile. */
export interface SyncRequest {
  /** Source names; default all. */
  sources?: string[];
  /** Ignore cursors; read everything. */
  full: boolean;
  /** Plan only; apply nothing. */
  dryRun: boolean;
  /** Let a threshold-held plan through (`--approve`, or `apply FILE`). */
  approve: boolean;
  /** Per-source input (the CSV file of a drop-folder or `import` run). */
  inputs?: Record<string, string>;
  /**
   * Per-source name of that input where it differs from the path read: a dropped file is read from the
   * watcher's staging folder, and issues, record origins (plan, audit) and the record of the input applied
   * last name it by where the admin dropped it.
   */
  inputNames?: Record<string, string>;
  /** Expected basis (apply FILE): refuse when the recomputed plan's basis differs. */
  expectBasis?: string;
  runId?: string;
  signal?: AbortSignal;
  /** Progress of reading and applying, for a terminal progress bar. */
  onProgress?: (phase: 'read' | 'apply', done: number, total?: number) => void;
}

/** The result of one reconciliation. */
export interface SyncOutcome {
  runId: string;
  plan: Plan;
  report?: ApplyReport;
  reads: MappedRead[];
  /** Path of the saved plan when held (for `pbxsync apply`). */
  heldPlanFile?: string;
  exitCode: number;
}

/** Reads the actual state of the target. */
export async function readActual(target: Target, signal?: AbortSignal): Promise<ActualState> {
  const users: PbxUser[] = [];
  for await (const u of target.listUsers(signal)) users.push(u);
  return { users, departments: await target.listDepartments(signal) };
}

/**
 * Puts the desired users' options into the target's form and drops those it cannot store (Target
 * canonicalOptions), so they never differ from what the target lists. Returns the dropped option names.
 */
function fitOptionsToTarget(target: Target, reads: MappedRead[]): string[] {
  if (!target.canonicalOptions) return [];
  const dropped = new Set<string>();
  for (const read of reads) {
    for (const d of read.desired) {
      const options = d.fields.options;
      if (!options) continue;
      const fitted = target.canonicalOptions(options);
      for (const k of Object.keys(options)) if (!(k in fitted)) dropped.add(k);
      d.fields.options = fitted;
    }
  }
  return [...dropped].sort();
}

/** Computes the plan (read sources, map, list target, plan, guards) without applying anything. */
export async function computePlan(
  engine: Engine,
  request: SyncRequest,
  target: Target,
  options: { withBasis?: boolean } = {},
): Promise<{ runId: string; plan: Plan; reads: MappedRead[]; sourceNames: string[]; inputs?: Record<string, string> }> {
  const runId = request.runId ?? newRunId();
  const logger = engine.logger.child({ runId });
  const sourceNames = request.sources?.length ? request.sources : [...engine.sources.keys()];
  for (const name of sourceNames) if (!engine.sources.has(name)) throw new UsageError(`no source named "${name}" in ${engine.config.file}`);
  // A full run of a CSV source without a file of its own compares with the input that source applied last.
  const recorded = request.full ? await recordedInputs(engine, sourceNames.filter((name) => !request.inputs?.[name])) : [];
  const inputs = recorded.length ? { ...request.inputs } : request.inputs;
  for (const r of recorded) inputs![r.source] = r.copy;

  const started = Date.now();
  const reads: MappedRead[] = [];
  for (const name of sourceNames) {
    const source = engine.sources.get(name)!;
    const mapping = await engine.mapping(name);
    const read = await readSource({
      source,
      mapping,
      cursor: request.full ? undefined : engine.state.getCursor(name),
      full: request.full,
      input: inputs?.[name],
      inputName: request.inputs?.[name] !== undefined ? request.inputNames?.[name] : undefined,
      signal: request.signal,
      logger,
      onIdentity: (n) => request.onProgress?.('read', n),
    });
    if (read.note) logger.warn(read.note, { source: name });
    reads.push(read);
  }
  const readMs = Date.now() - started;
  // The read's garbage (rows, identities) goes before the target is listed and the plan built: a nightly
  // full reconciliation of 100,000 users peaked ~50 MB higher without this.
  if (mappedUsers(reads) >= LARGE_RUN_USERS) collectGarbage();
  const unstored = fitOptionsToTarget(target, reads);
  const actual = await readActual(target, request.signal);
  const state: PlanState = {
    bindings: engine.state.bindings(),
    lastGoodCount: engine.state.lastGoodCounts(),
    now: new Date(),
    pendingCreates: await engine.journal.pendingCreates(),
  };
  const planned = buildPlan({
    runId,
    sources: reads,
    actual,
    state,
    numbering: engine.config.numbering,
    safety: engine.config.safety,
    basis: false,
  });
  if (unstored.length) {
    const note = `the ${target.kind} target cannot store the mapped options ${unstored.join(', ')}; they are neither compared nor written`;
    planned.notes = [...(planned.notes ?? []), note].sort();
  }
  for (const r of recorded) {
    const note = `${r.source}: compared with ${path.basename(r.file)}, the input applied last (run ${r.runId} at ${r.at}), kept as ${r.copy}`;
    planned.notes = [...(planned.notes ?? []), note].sort();
  }
  const managedCount = state.bindings.length;
  const guarded = applyGuards(planned, { state, safety: engine.config.safety, managedCount, approved: request.approve });
  // Only a plan that may be saved and approved later needs its basis.
  if (guarded.held || request.expectBasis || options.withBasis) guarded.basis = computeBasis(reads, actual, state.bindings);
  logger.info('planned', {
    phase: 'plan',
    sources: sourceNames,
    readMs,
    planMs: Date.now() - started - readMs,
    summary: guarded.summary,
    held: guarded.held,
  });
  return { runId, plan: guarded, reads, sourceNames, inputs };
}

/**
 * One reconciliation: plan, hold or apply, record the run. Holds the state lock while applying so two
 * processes never apply at once.
 */
export async function runSync(engine: Engine, request: SyncRequest): Promise<SyncOutcome> {
  const runId = request.runId ?? newRunId();
  const logger = engine.logger.child({ runId });
  const startedAt = new Date();
  const release = request.dryRun ? undefined : await acquireLock(engine.config.stateDir);
  let target: Target | undefined;
  try {
    // Another pbxsync process (a CLI import next to the daemon) may have run since this engine last looked.
    if (await engine.state.refresh()) logger.info('state changed on disk since the last run; re-read it');
    const sourceNames = request.sources?.length ? request.sources : [...engine.sources.keys()];
    const unchanged = await checkUnchanged(engine, { ...request, sources: sourceNames });
    if (unchanged.skip) {
      const { plan, reads } = await skippedRun(engine, runId, unchanged.skip, request.inputs ?? {});
      for (const r of reads) if (r.mode === 'full' && r.complete) engine.state.setLastGoodCount(r.source, r.count);
      // The run that applied this input recorded it as applied last, unless another input was applied since by
      // a run that left the PBX and the bindings as they were (an approval, which is never remembered as
      // converged, that changed nothing).
      const moved = [...unchanged.skip].filter(([name, r]) => engine.state.lastApplied(name)?.runId !== r.runId).map(([name]) => name);
      if (moved.length) await recordLastApplied(engine, { runId, reads, inputs: Object.fromEntries(moved.map((n) => [n, request.inputs![n]!])), names: request.inputNames });
      await recordRun(engine, { runId, sourceNames, startedAt, plan, exitCode: EXIT.ok });
      logger.info('input already applied; skipped', { phase: 'plan', sources: sourceNames, notes: plan.notes, summary: plan.summary });
      return { runId, plan, reads, exitCode: EXIT.ok };
    }
    target = await engine.openTarget({ readOnly: request.dryRun, signal: request.signal });
    const { plan, reads, inputs } = await computePlan(engine, { ...request, runId, sources: sourceNames }, target);
    if (request.expectBasis && plan.basis !== request.expectBasis) {
      throw new UsageError(
        'the saved plan no longer matches the sources and the PBX (its basis changed); run `pbxsync plan` again and review the new plan',
      );
    }
    if (request.dryRun) {
      return { runId, plan, reads, exitCode: exitCodeFor(plan) };
    }
    if (plan.held) {
      // The same plan held before (same inputs, same PBX: a poll every few minutes while nobody approves) is
      // not saved again: its file, the one the admin was told about, stays the one to approve.
      const same = engine.state.heldPlans().find((p) => sameSources(p.sources, sourceNames) && p.basis === plan.basis);
      // (Unless its file was deleted meanwhile: then it is saved anew.)
      let heldPlanFile = same && (await fs.access(same.file).then(() => true, () => false)) ? same.file : undefined;
      if (!heldPlanFile) {
        // A full run's recorded input too: approving applies what was reviewed, whatever is recorded by then.
        const kept = await keepInputs(engine, runId, inputs);
        heldPlanFile = await savePlan(engine, plan, { sources: sourceNames, full: request.full, inputs: kept });
        // This plan is what those sources would do now: an older one held for them is out of date.
        await forgetHeldPlans(engine, (p) => sameSources(p.sources, sourceNames), `superseded by the plan held by run ${runId}`);
        engine.state.addHeldPlan({ file: heldPlanFile, reason: plan.held, runId, at: new Date().toISOString(), sources: sourceNames, basis: plan.basis });
      }
      await recordRun(engine, { runId, sourceNames, startedAt, plan, exitCode: EXIT.held });
      logger.warn('plan held by a safety guard; nothing applied', { held: plan.held, plan: heldPlanFile });
      engine.metrics?.heldPlans.set(1);
      return { runId, plan, reads, heldPlanFile, exitCode: EXIT.held };
    }
    // The plan holds everything apply needs; the mapped users (a large share of the heap on a big import)
    // can go before the writes start, and with them the garbage of reading and planning.
    const mapped = mappedUsers(reads);
    for (const read of reads) read.desired = [];
    if (mapped >= LARGE_RUN_USERS) collectGarbage();
    const report = await apply(plan, {
      target,
      state: engine.state,
      journal: engine.journal,
      audit: engine.audit,
      logger,
      concurrency: engine.config.apply.concurrency,
      retries: engine.config.apply.retries,
      checkpointEvery: engine.config.apply.checkpointEvery,
      signal: request.signal,
      onProgress: (done, total) => request.onProgress?.('apply', done, total),
    });
    if (request.approve) await forgetHeldPlans(engine, () => true, `approved by run ${runId}`);
    else if (report.applied.length > 0) {
      // The PBX changed, so a plan held earlier for these sources can no longer be approved (its basis is
      // gone; `apply` of its file says so): stop showing it, and raising its alert, for ever. The next run
      // of those sources holds again if the reason still stands.
      await forgetHeldPlans(engine, (p) => p.sources === undefined || p.sources.every((s) => sourceNames.includes(s)), `superseded by run ${runId}, which changed the PBX`);
    }
    engine.metrics?.heldPlans.set(engine.state.held() ? 1 : 0);
    for (const op of report.applied) engine.metrics?.operations.inc({ kind: op.kind, result: 'applied' });
    for (const f of report.failed) engine.metrics?.operations.inc({ kind: f.op.kind, result: 'failed' });
    const exitCode = report.failed.length > 0 || plan.issues.length > 0 || plan.summary.conflicts > 0 ? EXIT.partial : EXIT.ok;
    // Closed first: the embedded store commits what is left on close, and the revision recorded must be final.
    await target.close();
    target = undefined;
    await recordLastApplied(engine, { runId, reads, inputs, names: request.inputNames });
    await engine.state.save();
    await recordConverged(engine, { runId, plan, report, reads, fingerprints: unchanged.fingerprints, inputs: request.inputs });
    await recordRun(engine, { runId, sourceNames, startedAt, plan, report, exitCode });
    logger.info('applied', { phase: 'apply', summary: report.summary, failed: report.failed.length, interrupted: report.interrupted });
    return { runId, plan, report, reads, exitCode };
  } catch (err) {
    // A state folder or PBX store pbxsync cannot write is the machine's problem, not the input's: say so, and
    // let callers retry (a dropped file stays in its folder).
    const failure = asStorageError(err, engine.config.stateDir) ?? err;
    // A usage-level refusal (exit 2: an unknown source, `apply` of a plan whose basis changed) is the admin's
    // to correct, not something the source did: neither the run history nor the source's health (status,
    // /healthz, the daemon's alerts) records it.
    if (failure instanceof UsageError) throw failure;
    await recordRun(engine, {
      runId,
      sourceNames: request.sources ?? [...engine.sources.keys()],
      startedAt,
      exitCode: exitCodeOfError(failure),
      error: describeError(failure),
    }).catch(() => undefined);
    throw failure;
  } finally {
    await target?.close();
    // Under the lock: another process may be saving a plan it is about to hold.
    if (release) await pruneOldPlans(engine, logger);
    await release?.();
  }
}

function exitCodeFor(plan: Plan): number {
  if (plan.held) return EXIT.held;
  if (plan.issues.length > 0 || plan.summary.conflicts > 0) return EXIT.partial;
  return EXIT.ok;
}

/**
 * Mapped users from which a run collects garbage after reading and again between planning and applying (see
 * collectGarbage): below this the heap is small and V8's own schedule is fine.
 */
const LARGE_RUN_USERS = 20_000;

function mappedUsers(reads: MappedRead[]): number {
  return reads.reduce((n, r) => n + r.desired.length, 0);
}

/** A short, sortable, unique run id: `20261123T140501Z-3f9a1c`. */
export function newRunId(): string {
  const ts = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `${ts}-${crypto.randomBytes(3).toString('hex')}`;
}

/**
 * Stops holding the plans `which` selects (status, metrics and alerts no longer show them). Their files stay
 * in `<stateDir>/plans/` for `safety.keepPlansDays` from now (see releasePlanFiles): an admin may still run
 * `pbxsync apply` on one, which then explains that its basis changed.
 */
async function forgetHeldPlans(engine: Engine, which: (plan: HeldPlan) => boolean, why: string): Promise<void> {
  const released = engine.state.heldPlans().filter(which);
  for (const held of released) {
    engine.state.removeHeldPlan(held.runId);
    engine.logger.info('held plan no longer held', { runId: held.runId, reason: held.reason, why });
  }
  if (released.length) await releasePlanFiles(plansDir(engine), new Set(released.map((p) => p.runId)));
}

function sameSources(a: readonly string[] | undefined, b: readonly string[]): boolean {
  return a !== undefined && a.length === b.length && a.every((s) => b.includes(s));
}

async function recordRun(
  engine: Engine,
  run: { runId: string; sourceNames: string[]; startedAt: Date; plan?: Plan; report?: ApplyReport; exitCode: number; error?: string },
): Promise<void> {
  const finishedAt = new Date();
  engine.state.recordRun({
    runId: run.runId,
    sources: run.sourceNames,
    startedAt: run.startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    summary: run.report?.summary ?? run.plan?.summary,
    held: run.plan?.held ?? null,
    exitCode: run.exitCode,
    error: run.error,
  });
  for (const name of run.sourceNames) {
    const read = run.plan?.sources.find((s) => s.source === name);
    const ok = run.exitCode !== EXIT.failure && (read?.complete ?? false);
    // A CSV source's run without a file reads nothing (an empty partial read): clean, but it changed nothing.
    const readSomething = read !== undefined && (read.mode !== 'partial' || read.count > 0);
    engine.state.setSourceHealth(
      name,
      {
        at: finishedAt.toISOString(),
        ok: ok || read?.mode === 'partial',
        error: run.error ?? (read && !read.complete && read.mode !== 'partial' ? 'incomplete read' : undefined),
        count: read?.count,
        exitCode: run.exitCode,
      },
      { clean: run.exitCode === EXIT.ok && readSomething },
    );
    engine.metrics?.runs.inc({ source: name, result: String(run.exitCode) });
    engine.metrics?.runDuration.observe({ source: name }, (finishedAt.getTime() - run.startedAt.getTime()) / 1000);
    if (run.exitCode === EXIT.ok || run.exitCode === EXIT.partial) engine.metrics?.lastSuccess.set({ source: name }, finishedAt.getTime() / 1000);
    if (read) engine.metrics?.sourceIdentities.set({ source: name }, read.count);
  }
  await engine.state.save();
}
