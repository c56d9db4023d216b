/**
 * The last file of each drop-folder source, as `pbxsync status` and the daemon's /status show it, and whether
 * that file leaves its source degraded. Both are read from the state, so every process and every restart
 * agrees on them.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { LockedError } from '../errors/index.js';
import { acquireLock } from '../state/lock.js';
import type { LastDroppedFile, SourceHealth } from '../state/store.js';
import type { Engine } from './engine.js';

/**
 * Why the last dropped file leaves its source degraded (/healthz 503), or undefined. It does when it went to
 * `failed/` or some of its operations failed, until a run of the source ends with exit 0 after it (a later
 * clean file replaces the record anyway; the nightly run, `pbxsync sync --full` or an `import` count too; a
 * run that had nothing to read does not: see SourceHealth.lastClean). Rejected rows alone do not degrade it:
 * the rest of the file applied, and its report lists them.
 */
export function droppedFileProblem(file: LastDroppedFile | undefined, health: SourceHealth | undefined): string | undefined {
  if (!file || (file.status === 'processed' && file.failed === 0)) return undefined;
  // ISO 8601 UTC strings from the same clock compare as times.
  if (health?.lastClean !== undefined && health.lastClean > file.at) return undefined;
  if (file.status === 'failed') {
    const why = file.held ? `plan held: ${file.held}` : file.error ?? 'nothing in it could be applied';
    return `last file ${file.name} went to failed/ (${why})`;
  }
  return `last file ${file.name}: ${file.failed} operation${file.failed === 1 ? '' : 's'} failed (see ${file.movedTo})`;
}

/** Why `source` is degraded by its last dropped file, from the engine's state (see {@link droppedFileProblem}). */
export function sourceFileProblem(engine: Pick<Engine, 'state'>, source: string): string | undefined {
  return droppedFileProblem(engine.state.lastDroppedFile(source), engine.state.sourceHealthOf(source));
}

/** First and longest wait between two tries of the state lock in {@link recordDroppedFile}. */
const LOCK_WAIT_FIRST_MS = 50;
const LOCK_WAIT_MAX_MS = 2_000;

/**
 * Saves the record of a dropped file that was moved, under the state lock (after reading what other processes
 * saved meanwhile, as a run does), so no process's save drops another's. The file has been moved already, so
 * the lock is waited for (a run of another source, a CLI import) rather than given up on.
 *
 * @throws the abort reason when `signal` aborts while waiting (the daemon stops); StorageError when the state
 *   folder cannot be written.
 */
export async function recordDroppedFile(engine: Engine, source: string, file: LastDroppedFile, signal?: AbortSignal): Promise<void> {
  let release: (() => Promise<void>) | undefined;
  for (let wait = LOCK_WAIT_FIRST_MS; !release; wait = Math.min(LOCK_WAIT_MAX_MS, wait * 2)) {
    signal?.throwIfAborted();
    try {
      release = await acquireLock(engine.config.stateDir);
    } catch (err) {
      if (!(err instanceof LockedError)) throw err;
      await sleep(wait, undefined, { signal });
    }
  }
  try {
    await engine.state.refresh();
    engine.state.setLastDroppedFile(source, file);
    await engine.state.save();
  } finally {
    await release();
  }
}
