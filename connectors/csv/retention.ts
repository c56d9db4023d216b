/**
 * Retention of the drop folder's processed/ and failed/ folders (`csv.keepDays`): a nightly export of a large
 * directory is tens of MB, and kept for ever it fills the disk in months.
 */
import { readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { CsvSourceSettings } from '../../src/config/types.js';

const DAY_MS = 86_400_000;

/**
 * Deletes the files in `processed` and `failed` (inputs and reports alike) moved there more than `keepDays`
 * days before `now`, by their ctime (set by the move, not by whoever wrote the file). The newest input goes
 * too once that old: the nightly full reconciliation re-reads the engine's own copy of the input applied last
 * (in the state folder), never these folders. Does nothing without `keepDays`. Returns the deleted paths.
 */
export async function pruneMovedFiles(
  settings: Pick<CsvSourceSettings, 'processed' | 'failed' | 'keepDays'>,
  now: number = Date.now(),
): Promise<string[]> {
  if (!settings.keepDays) return [];
  const cutoff = now - settings.keepDays * DAY_MS;
  const deleted: string[] = [];
  for (const dir of new Set([path.resolve(settings.processed), path.resolve(settings.failed)])) {
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      const file = path.join(dir, name);
      const st = await stat(file).catch(() => undefined);
      if (!st?.isFile() || st.ctimeMs >= cutoff) continue;
      await rm(file, { force: true });
      deleted.push(file);
    }
  }
  return deleted;
}
