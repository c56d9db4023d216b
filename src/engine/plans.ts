/**
 * Retention of `<stateDir>/plans/` (`safety.keepPlansDays`). A held plan is saved with a copy of its input
 * files; a 100,000-user snapshot held every night for a changing reason is tens of MB a night, kept for ever.
 */
import { readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';

const DAY_MS = 86_400_000;

/** `<runId>.json` and `<runId>.<source>.<ext>`: what the engine writes there (see newRunId). */
const SAVED_BY_A_RUN = /^(\d{8}T\d{6}Z-[0-9a-f]{6})\./;

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
 * `keepDays` (by mtime: written once, when saved). Files of other names (an admin's own notes) stay. Returns
 * the deleted paths.
 */
export async function prunePlans(options: PrunePlansOptions): Promise<string[]> {
  const cutoff = (options.now ?? Date.now()) - options.keepDays * DAY_MS;
  const deleted: string[] = [];
  for (const name of await readdir(options.dir).catch(() => [] as string[])) {
    const runId = SAVED_BY_A_RUN.exec(name)?.[1];
    if (!runId || options.heldRunIds.has(runId)) continue;
    const file = path.join(options.dir, name);
    const st = await stat(file).catch(() => undefined);
    if (!st?.isFile() || st.mtimeMs >= cutoff) continue;
    await rm(file, { force: true });
    deleted.push(file);
  }
  return deleted.sort();
}
