/**
 * `<stateDir>/plans/`: a held plan is saved there with a copy of its input files, for `pbxsync apply` to let
 * it through later; and its retention (`safety.keepPlansDays`, counted from when a plan stops being held): a
 * 100,000-user snapshot held every night for a changing reason is tens of MB a night, kept for ever.
 */
import { copyFile, mkdir, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Engine } from './engine.js';
import { UsageError, describeError } from '../errors/index.js';
import type { SyncRequest } from './sync.js';
import { tightenMode } from '../util/fs.js';
import type { Logger } from '../log.js';
import type { Plan } from '../reconcile/types.js';
import { serializePlan } from '../reconcile/serialize.js';

/** A saved plan file: the plan (secrets masked) plus what is needed to recompute it. */
export interface SavedPlan {
  version: 1;
  request: { sources: string[]; full: boolean; inputs?: Record<string, string> };
  plan: unknown;
}

/**
 * The run that approves a saved plan (`pbxsync apply FILE`): the plan's own sources and inputs, let through
 * its thresholds, and refused (see SyncRequest.expectBasis) when the sources or the PBX changed since.
 *
 * @throws UsageError when `saved` is not a pbxsync plan file; `file` names it in the message.
 */
export function approvalRequest(saved: SavedPlan, file: string): SyncRequest {
  const basis = (saved.plan as { basis?: string } | undefined)?.basis;
  if (saved.version !== 1 || !basis) throw new UsageError(`${file} is not a pbxsync plan file`);
  return { sources: saved.request.sources, full: saved.request.full, inputs: saved.request.inputs, dryRun: false, approve: true, expectBasis: basis };
}

/** `<stateDir>/plans`. */
export function plansDir(engine: Engine): string {
  return path.join(engine.config.stateDir, 'plans');
}

/** The text of a plan file (`plan --out FILE`, a held plan): what {@link SavedPlan} describes. */
export function savedPlanText(plan: Plan, request: SavedPlan['request']): string {
  const saved: SavedPlan = { version: 1, request, plan: JSON.parse(serializePlan(plan)) };
  return JSON.stringify(saved, null, 2) + '\n';
}

/** Writes a plan file under `<stateDir>/plans/` (created when missing) and returns its path. */
export async function savePlan(engine: Engine, plan: Plan, request: SavedPlan['request']): Promise<string> {
  const target = path.join(plansDir(engine), `${plan.runId}.json`);
  await mkdir(path.dirname(target), { recursive: true });
  // 0600 like every file of the state folder that may tell more than the status page: a plan masks the
  // secrets, but names every user and the changes to them.
  await writeFile(target, savedPlanText(plan, request), { mode: 0o600 });
  await tightenMode(target);
  return target;
}

/**
 * Copies the input files of a held run next to the saved plan: a dropped file moves on to failed/ and an
 * admin may edit theirs, but approving the plan must apply exactly what was reviewed.
 */
export async function keepInputs(engine: Engine, runId: string, inputs?: Record<string, string>): Promise<Record<string, string> | undefined> {
  if (!inputs) return undefined;
  const kept: Record<string, string> = {};
  const dir = plansDir(engine);
  await mkdir(dir, { recursive: true });
  for (const [source, file] of Object.entries(inputs)) {
    const copy = path.join(dir, `${runId}.${source}${path.extname(file) || '.csv'}`);
    await copyFile(file, copy);
    // The copy takes the input's mode, and an input may carry PINs (the 3CX CSV's VMPIN column).
    await tightenMode(copy);
    kept[source] = copy;
  }
  return kept;
}

const DAY_MS = 86_400_000;

/** `<runId>.json` and `<runId>.<source>.<ext>`: what the engine writes there (see newRunId). */
const SAVED_BY_A_RUN = /^(\d{8}T\d{6}Z-[0-9a-f]{6})\./;

/** The files in `dir` saved by runs, with their run ids (other files, e.g. an admin's notes, are not). */
async function savedByRuns(dir: string): Promise<Array<{ file: string; runId: string }>> {
  const out: Array<{ file: string; runId: string }> = [];
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const runId = SAVED_BY_A_RUN.exec(name)?.[1];
    if (runId) out.push({ file: path.join(dir, name), runId });
  }
  return out;
}

/** Options of {@link prunePlans}. */
export interface PrunePlansOptions {
  /** `<stateDir>/plans`. */
  dir: string;
  /** Run ids of the plans still held: their files stay whatever their age (an admin may still approve one). */
  heldRunIds: ReadonlySet<string>;
  keepDays: number;
  now?: number;
}

/**
 * Deletes the plan files and input copies saved by runs whose plan is no longer held, once older than
 * `keepDays` by their mtime: when they were saved, or when their plan stopped being held (see
 * {@link releasePlanFiles}). Files of other names (an admin's own notes) stay. Returns the deleted paths.
 */
export async function prunePlans(options: PrunePlansOptions): Promise<string[]> {
  const cutoff = (options.now ?? Date.now()) - options.keepDays * DAY_MS;
  const deleted: string[] = [];
  for (const { file, runId } of await savedByRuns(options.dir)) {
    if (options.heldRunIds.has(runId)) continue;
    const st = await stat(file).catch(() => undefined);
    if (!st?.isFile() || st.mtimeMs >= cutoff) continue;
    await rm(file, { force: true });
    deleted.push(file);
  }
  return deleted.sort();
}

/**
 * Stamps the files of plans that stop being held (approved, superseded, or their basis gone) with the time
 * now, so that {@link prunePlans} counts `keepDays` from then: a plan held for six weeks and then approved
 * stays that long after its approval, not a moment.
 */
export async function releasePlanFiles(dir: string, runIds: ReadonlySet<string>, now: Date = new Date()): Promise<void> {
  for (const { file, runId } of await savedByRuns(dir)) {
    // Best effort: a file that cannot be stamped is pruned by its saving time, as before.
    if (runIds.has(runId)) await utimes(file, now, now).catch(() => undefined);
  }
}

/** Applies `safety.keepPlansDays` to `<stateDir>/plans/`; a failure is logged, never fails the run. */
export async function pruneOldPlans(engine: Engine, logger: Logger): Promise<void> {
  const keepPlansDays = engine.config.safety.keepPlansDays;
  try {
    const deleted = await prunePlans({
      dir: plansDir(engine),
      heldRunIds: new Set(engine.state.heldPlans().map((p) => p.runId)),
      keepDays: keepPlansDays,
    });
    if (deleted.length) logger.info('old saved plans deleted', { keepPlansDays, files: deleted.map((f) => path.basename(f)) });
  } catch (err) {
    logger.warn('could not delete old saved plans', { error: describeError(err) });
  }
}
