/**
 * The input each CSV source applied last, kept in the state folder: what the nightly full reconciliation
 * (`schedule.full`, `pbxsync sync --full`) of a CSV source compares the PBX with.
 *
 * Re-reading "the newest file in processed/" undid changes: a snapshot held by a threshold goes to failed/
 * and, once approved, stays there; `pbxsync import FILE` leaves the file where the admin keeps it. The night
 * after either, the older file in processed/ came back. So the engine records the input of every run that
 * applied one (a dropped file, `import`, an approved plan's input), whatever became of the file since, and
 * keeps a copy of its bytes under `<stateDir>/last-applied/<source>.csv`: moves, `csv.keepDays` and an admin
 * tidying their folder cannot take it away. A dry run, a held plan and a file with nothing usable in it
 * (a broken export, sent to failed/) are no input applied, and leave the record as it was.
 *
 * What re-reading it means follows from the source's mode:
 * - `snapshot`: the file is the whole population; the PBX is put back to it (drift on managed users
 *   corrected, users missing from it through the removal policy, as when it was applied);
 * - `upsert`: each file adds or changes its own rows, so the nightly run repairs drift on the rows of the
 *   last file only. Re-applying older files as well would bring back what later files changed; their rows
 *   are repaired again the next time a file names them.
 *
 * Not engine/unchanged.ts's record: that one remembers an input only while the run that applied it left
 * nothing undone (no rejected row, conflict or failure) and holds a fingerprint, not the bytes; the nightly
 * run must re-apply the last input precisely when something was left undone.
 *
 * A state folder from before this record has none: the nightly run of that source then reconciles nothing
 * (and says so in the log) until a file is applied. Falling back to the newest file in processed/ could bring
 * back exactly what this record exists to stop bringing back.
 */
import crypto from 'node:crypto';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { describeError } from '../errors/index.js';
import { syncFolder } from '../util/fs.js';
import type { Engine } from './engine.js';
import type { MappedRead } from './read.js';

/** The folder of the copies inside the state folder. */
export const LAST_APPLIED_DIR = 'last-applied';

/** Where the copy of the input a source applied last is kept: `<stateDir>/last-applied/<source>.csv`. */
export function lastAppliedCopy(engine: Engine, source: string): string {
  // Source names are letters, digits, ".", "_" and "-" and start with a letter or digit (config schema).
  return path.join(path.resolve(engine.config.stateDir), LAST_APPLIED_DIR, `${source}.csv`);
}

/** A full read's input taken from the record: the copy to read, and what it is a copy of. */
export interface RecordedInput {
  source: string;
  copy: string;
  /** The file as the applying run named it. */
  file: string;
  runId: string;
  at: string;
}

/**
 * The recorded input of each CSV source in `sources` that a full run reads without an input of its own;
 * sources without a record (or whose copy is gone) have none, and their read finds nothing to reconcile.
 */
export async function recordedInputs(engine: Engine, sources: readonly string[]): Promise<RecordedInput[]> {
  const out: RecordedInput[] = [];
  for (const source of sources) {
    if (engine.sources.get(source)?.kind !== 'csv') continue;
    const record = engine.state.lastApplied(source);
    if (!record) continue;
    const copy = lastAppliedCopy(engine, source);
    if (!(await stat(copy).then((s) => s.isFile(), () => false))) {
      engine.logger.warn('the copy of the input applied last is missing; nothing to reconcile until a file is applied', {
        source,
        file: record.file,
        copy,
      });
      continue;
    }
    out.push({ source, copy, file: record.file, runId: record.runId, at: record.at });
  }
  return out;
}

/**
 * Whether a run's read of a source applied something of its input: the daemon's rule for processed/ against
 * failed/ (a file whose every row was rejected, or that could not be read, applied nothing).
 */
function usable(read: MappedRead | undefined): boolean {
  return read !== undefined && !(read.desiredCount === 0 && read.issues.length > 0);
}

/**
 * Copies `file` to `copy` through a temp file (0600, fsync'd, renamed over it, folder fsync'd) and returns
 * the SHA-256 and size of the bytes copied: one pass over a file that may be tens of MB.
 */
async function copyAtomically(file: string, copy: string): Promise<{ sha256: string; size: number }> {
  await mkdir(path.dirname(copy), { recursive: true });
  const temp = path.join(path.dirname(copy), `.${path.basename(copy)}.tmp`);
  const hash = crypto.createHash('sha256');
  let size = 0;
  const input = await open(file, 'r');
  try {
    const output = await open(temp, 'w', 0o600);
    try {
      const buffer = Buffer.allocUnsafe(1 << 20);
      for (;;) {
        const { bytesRead } = await input.read(buffer, 0, buffer.length, null);
        if (bytesRead === 0) break;
        const chunk = buffer.subarray(0, bytesRead);
        hash.update(chunk);
        await output.write(chunk);
        size += bytesRead;
      }
      await output.sync();
    } catch (err) {
      await output.close().catch(() => undefined);
      await rm(temp, { force: true });
      throw err;
    }
    await output.close();
  } finally {
    await input.close();
  }
  await rename(temp, copy);
  await syncFolder(path.dirname(copy));
  return { sha256: hash.digest('hex'), size };
}

/**
 * After a run whose plan was applied (not a dry run, not held): records, per source with an input, that
 * input as the one applied last, with a copy of its bytes. Also when some operations failed or the run was
 * stopped part-way: the next full run then finishes what this input started. Call once the target was closed (its writes are
 * durable) and before the state is saved. A source's own recorded copy (a full run re-reading it) is not
 * recorded again. A copy that cannot be written forgets the record instead (logged): the nightly run then
 * reconciles nothing rather than an older input.
 */
export async function recordLastApplied(
  engine: Engine,
  run: { runId: string; reads: MappedRead[]; inputs?: Record<string, string>; names?: Record<string, string> },
): Promise<void> {
  for (const [source, file] of Object.entries(run.inputs ?? {})) {
    if (engine.sources.get(source)?.kind !== 'csv') continue;
    const copy = lastAppliedCopy(engine, source);
    if (path.resolve(file) === copy) continue;
    if (!usable(run.reads.find((r) => r.source === source))) continue;
    try {
      const { sha256, size } = await copyAtomically(file, copy);
      engine.state.setLastApplied(source, { file: path.resolve(run.names?.[source] ?? file), sha256, size, runId: run.runId, at: new Date().toISOString() });
    } catch (err) {
      engine.state.setLastApplied(source, undefined);
      await rm(copy, { force: true }).catch(() => undefined);
      engine.logger.error('could not keep a copy of the input applied; the nightly full run reconciles nothing until a file is applied again', {
        source,
        file,
        error: describeError(err),
      });
    }
  }
}
