/**
 * The drop-folder watcher: notices CSV files dropped into a folder, waits until each is complete, takes each
 * into a private staging folder, hands them one at a time to a callback, then moves each to processed/ or
 * failed/ with its report beside it.
 */
import { constants as fsConstants, mkdirSync, readdirSync } from 'node:fs';
import { copyFile, link, mkdir, readdir, rename, rmdir, stat, unlink, writeFile, access } from 'node:fs/promises';
import path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import type { CsvSourceSettings } from '../../src/config/types.js';
import { describeError } from '../../src/errors/index.js';
import type { Logger } from '../../src/log.js';
import { formatReport, type CsvReport } from './report.js';

/** What the callback decided about one file; the watcher moves the file accordingly. */
export interface FileOutcome {
  status: 'processed' | 'failed';
  report: CsvReport;
}

/**
 * Throw this from `onFile` to leave the file where it is: it is neither moved nor reported. Without
 * `retryInMs` (the daemon is stopping) it is picked up again at the next start; with it (the run failed for
 * a passing reason) the watcher offers it again once that time has passed, and not before.
 */
export class LeaveFileInPlace extends Error {
  readonly retryInMs?: number;
  /** The run that left the file, named in the watcher's log line about it. */
  readonly runId?: string;

  constructor(message = 'file left in the drop folder for the next start', options: { retryInMs?: number; runId?: string } = {}) {
    super(message);
    this.name = 'LeaveFileInPlace';
    this.retryInMs = options.retryInMs;
    this.runId = options.runId;
  }
}

/** Where a file handed to `onFile` was dropped. */
export interface DroppedFile {
  /**
   * The path the admin dropped the file under (`<folder>/<name>`). By the time `onFile` runs the file is no
   * longer there: a file dropped under the same name meanwhile is a new drop.
   */
  dropped: string;
}

/**
 * The private folder inside a drop folder that holds the files taken for processing, each in a subfolder of
 * its own (`<folder>/.pbxsync-processing/<taken>/<name>`). A dotfolder: the watcher, {@link dropFolderFiles}'s
 * listing of the folder itself and admins' file browsers pass it by.
 */
export const STAGING_FOLDER = '.pbxsync-processing';

/** Options of {@link watchDropFolder}. */
export interface WatchDropFolderOptions {
  settings: CsvSourceSettings;
  logger: Logger;
  /**
   * Reads and applies one complete file. Called for one file at a time per folder, with the file's path in
   * the staging folder (see {@link STAGING_FOLDER}): the file read is the one that is moved afterwards.
   */
  onFile: (file: string, drop: DroppedFile) => Promise<FileOutcome>;
  /** Source name for the report written when `onFile` throws. */
  source?: string;
  /**
   * Called after a file was moved with its report (the report as written); awaited before the next file, so
   * what it records follows the order of the files. Its failure is logged.
   */
  onMoved?: (moved: { report: CsvReport; status: FileOutcome['status']; movedTo: string; reportPath: string }) => void | Promise<void>;
  /**
   * Listen to file-system events (default true). Without them the folder listing every `rescanMs` finds
   * the files alone, as it does on a network share (SMB/NFS) whose changes made by other machines raise no
   * events here.
   */
  fileEvents?: boolean;
  /** How often the folder is listed anyway, in case an event was lost or never came. Default 10 s. */
  rescanMs?: number;
}

/** A running drop-folder watcher. */
export interface DropFolderWatcher {
  /** Stops watching; waits for the file in progress (queued files stay in the folder for the next start). */
  close(): Promise<void>;
  /**
   * Resolves once every file in the folder at the time of the call (and any that arrived meanwhile) has been
   * processed, has vanished or waits for a retry (see {@link LeaveFileInPlace}), and nothing is in progress.
   */
  drain(): Promise<void>;
}

const SKIP_SUFFIXES = ['.tmp', '.part', '.crdownload'];

/**
 * Whether a file name is a candidate for import: one of `extensions` (case-insensitive, with or without the
 * dot) and not a dotfile (also LibreOffice's `.~lock.x.csv#`), an Office lock file (`~$x.csv`) or a
 * download/copy in progress (`.tmp`, `.part`, `.crdownload`).
 */
export function isCandidateFile(name: string, extensions: readonly string[]): boolean {
  if (name.startsWith('.') || name.startsWith('~$')) return false;
  const lower = name.toLowerCase();
  if (SKIP_SUFFIXES.some((s) => lower.endsWith(s))) return false;
  return extensions.some((e) => {
    const ext = (e.startsWith('.') ? e : `.${e}`).toLowerCase();
    return lower.length > ext.length && lower.endsWith(ext);
  });
}

/**
 * The files waiting in a drop folder: those the watcher takes (see {@link watchDropFolder}), i.e. regular
 * files directly in `settings.folder` (not in processed/, failed/ or other subfolders) whose names pass
 * {@link isCandidateFile}, sorted by name, preceded by those taken into the staging folder and not moved on
 * yet (in progress, or left there by a daemon that stopped or crashed: it takes them first at its next start),
 * in the order they were taken. A file still being written counts too: the watcher takes it once it is
 * complete. An unreadable or missing folder has none.
 */
export async function dropFolderFiles(settings: Pick<CsvSourceSettings, 'folder' | 'extensions'>): Promise<string[]> {
  const root = path.resolve(settings.folder);
  return [...(await stagedFiles(root, settings.extensions)).map((s) => s.staged), ...(await inboxFiles(root, settings.extensions))];
}

/** A file taken into the staging folder: where it is and where it was dropped. */
interface Staged {
  staged: string;
  dropped: string;
}

/** The files in the staging folder (one subfolder per file taken), oldest pick-up first. */
async function stagedFiles(root: string, extensions: readonly string[]): Promise<Staged[]> {
  const staging = path.join(root, STAGING_FOLDER);
  const slots = (await readdir(staging).catch(() => [] as string[])).sort();
  const found: Staged[] = [];
  for (const slot of slots) {
    const names = (await readdir(path.join(staging, slot)).catch(() => [] as string[])).filter((n) => isCandidateFile(n, extensions)).sort();
    for (const name of names) found.push({ staged: path.join(staging, slot, name), dropped: path.join(root, name) });
  }
  return found;
}

/** The candidate files directly in `root`, by name. */
async function inboxFiles(root: string, extensions: readonly string[]): Promise<string[]> {
  const names = await readdir(root).catch(() => [] as string[]);
  const files = await Promise.all(
    names
      .filter((name) => isCandidateFile(name, extensions))
      .sort()
      .map(async (name) => {
        const file = path.join(root, name);
        return (await stat(file).catch(() => undefined))?.isFile() ? file : undefined;
      }),
  );
  return files.filter((f): f is string => f !== undefined);
}

interface Pending {
  size: number;
  mtimeMs: number;
  /** When size or mtime last changed (or the file was first seen). */
  since: number;
}

/**
 * Watches `settings.folder` (not its subfolders) with chokidar. A file is complete once its size and mtime
 * have not changed for `settings.stableMs` since it was first seen — a file renamed in arrives whole and
 * waits just that long; one copied or written slowly waits until the writer has been quiet that long. Files
 * already present at start count too. Complete files are processed one at a time in the order they became
 * complete (files complete at the same moment, e.g. at start, by modification time then name).
 *
 * A complete file is first renamed into its own subfolder of {@link STAGING_FOLDER} (atomic: same folder
 * tree), and read, reported and moved from there: a file dropped under the same name while the first one is
 * applied is a new drop, taken after it. Files a stopped or crashed daemon left in the staging folder go
 * first at the next start.
 *
 * After `onFile` returns, the file is moved to `processed/` or `failed/` (per its outcome) with its report
 * beside it (see {@link moveWithReport}); the report's `file` is where the file was dropped. When `onFile`
 * throws, the file goes to `failed/` with a report holding the error — unless it threw
 * {@link LeaveFileInPlace} (with `retryInMs`: offered again after that long) or the watcher is closing: then
 * the file goes back to where it was dropped, or, when a newer file took that name meanwhile, stays in the
 * staging folder (and still goes before the newer one).
 */
export function watchDropFolder(options: WatchDropFolderOptions): DropFolderWatcher {
  const { settings, logger, onFile } = options;
  const root = path.resolve(settings.folder);
  const staging = path.join(root, STAGING_FOLDER);
  const stableMs = Math.max(0, settings.stableMs);
  const pollMs = Math.min(500, Math.max(20, Math.floor(stableMs / 4)));
  mkdirSync(root, { recursive: true });

  const pending = new Map<string, Pending>();
  const queue: string[] = [];
  /** Files in the staging folder to process before anything new (left there earlier, or waiting behind). */
  const stagedQueue: Staged[] = [];
  /** Staged files that wait for a retry, by staged path. */
  const stagedDeferred = new Map<string, { entry: Staged; timer: NodeJS.Timeout }>();
  /** Files seen again while queued or in progress: look at them once more afterwards. */
  const dirty = new Set<string>();
  /** Files that could not be moved away, by the size/mtime they had: not retried until they change. */
  const stuck = new Map<string, string>();
  /** Files left in place to be retried: ignored (also by the rescan) until their timer offers them again. */
  const deferred = new Map<string, NodeJS.Timeout>();
  /** The dropped path of the file in progress. */
  let current: string | undefined;
  let currentDone: Promise<void> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  let idleWaiters: Array<() => void> = [];
  let takenSeq = 0;

  const candidate = (p: string): boolean =>
    path.dirname(path.resolve(p)) === root && isCandidateFile(path.basename(p), settings.extensions);
  /** Whether an older file of this dropped path still waits in the staging folder: the newer one waits for it. */
  const behindStaged = (dropped: string): boolean =>
    stagedQueue.some((s) => s.dropped === dropped) || [...stagedDeferred.values()].some((d) => d.entry.dropped === dropped);

  // Before any new file: what an earlier run left in the staging folder. Read once, synchronously, so nothing
  // dropped since can overtake it.
  for (const slot of readdirSafe(staging).sort()) {
    for (const name of readdirSafe(path.join(staging, slot)).filter((n) => isCandidateFile(n, settings.extensions)).sort()) {
      stagedQueue.push({ staged: path.join(staging, slot, name), dropped: path.join(root, name) });
    }
  }
  if (stagedQueue.length) logger.info('drop folder files left in the staging folder by an earlier run go first', { folder: root, files: stagedQueue.map((s) => path.basename(s.staged)) });

  const watcher: FSWatcher | undefined =
    options.fileEvents === false
      ? undefined
      : watch(root, {
          depth: 0,
          ignoreInitial: false,
          ignorePermissionErrors: true,
          // Subfolders (processed/, failed/, the staging folder) and non-candidates are never even stat'ed.
          ignored: (p: string) => path.resolve(p) !== root && !isCandidateFile(path.basename(p), settings.extensions),
        });
  const ready = watcher ? new Promise<void>((resolve) => watcher.once('ready', () => resolve())) : Promise.resolve();
  watcher?.on('add', (p) => void notice(path.resolve(p)));
  watcher?.on('change', (p) => void notice(path.resolve(p)));
  watcher?.on('unlink', (p) => void forget(path.resolve(p)));
  watcher?.on('error', (err) => logger.error('drop folder watch error', { folder: root, error: describeError(err) }));
  // Safety net: file-system events get lost (inotify queue overflow, a watch limit reached, SMB/NFS shares
  // that deliver none), and an admin's file must never sit in the folder unnoticed.
  const sweeper = setInterval(() => {
    if (!closed) void rescan();
  }, options.rescanMs ?? RESCAN_MS);
  sweeper.unref();
  // Without events nothing reports the files already there: the first listing does. With them, a file that
  // arrives while chokidar makes its first scan raises no event: a listing once it is ready finds it.
  if (!watcher) void rescan();
  else void ready.then(() => (closed ? undefined : rescan()));
  queueMicrotask(() => pump());

  async function forget(file: string): Promise<void> {
    // The event may come late, after the name is taken again (the staging rename, then a file put back):
    // only a name that is really gone is forgotten.
    if (await stat(file).then(() => true, () => false)) return;
    pending.delete(file);
    stuck.delete(file);
    clearTimeout(deferred.get(file));
    deferred.delete(file);
    const i = queue.indexOf(file);
    if (i >= 0) queue.splice(i, 1);
    checkIdle();
  }

  async function notice(file: string): Promise<void> {
    if (closed || !candidate(file)) return;
    if (file === current) {
      dirty.add(file);
      return;
    }
    if (deferred.has(file)) return;
    const st = await stat(file).catch(() => undefined);
    if (!st || !st.isFile() || closed) return;
    const sig = `${st.size}:${st.mtimeMs}`;
    if (stuck.get(file) === sig) return;
    stuck.delete(file);
    const q = queue.indexOf(file);
    if (q >= 0) queue.splice(q, 1); // it changed after being declared complete: wait again
    const before = pending.get(file);
    if (!before || before.size !== st.size || before.mtimeMs !== st.mtimeMs) {
      pending.set(file, { size: st.size, mtimeMs: st.mtimeMs, since: Date.now() });
    }
    schedulePoll();
  }

  function schedulePoll(): void {
    if (timer || closed || pending.size === 0) return;
    timer = setTimeout(() => {
      timer = undefined;
      void poll();
    }, pollMs);
  }

  async function poll(): Promise<void> {
    const now = Date.now();
    const done: Array<{ file: string; mtimeMs: number }> = [];
    await Promise.all(
      [...pending].map(async ([file, p]) => {
        const st = await stat(file).catch(() => undefined);
        if (pending.get(file) !== p) return; // replaced meanwhile
        if (!st || !st.isFile()) {
          pending.delete(file);
          return;
        }
        if (st.size !== p.size || st.mtimeMs !== p.mtimeMs) {
          pending.set(file, { size: st.size, mtimeMs: st.mtimeMs, since: now });
        } else if (now - p.since >= stableMs) {
          pending.delete(file);
          done.push({ file, mtimeMs: st.mtimeMs });
        }
      }),
    );
    if (closed) return;
    done.sort((a, b) => a.mtimeMs - b.mtimeMs || (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
    for (const d of done) if (!queue.includes(d.file)) queue.push(d.file);
    schedulePoll();
    pump();
    checkIdle();
  }

  function pump(): void {
    if (closed || current !== undefined) return;
    let next: (() => Promise<void>) | undefined;
    const staged = stagedQueue.shift();
    if (staged) {
      current = staged.dropped;
      next = () => processStaged(staged);
    } else {
      const i = queue.findIndex((f) => !behindStaged(f));
      if (i < 0) return;
      const file = queue.splice(i, 1)[0]!;
      current = file;
      next = () => takeAndProcess(file);
    }
    const file = current;
    currentDone = next()
      .catch((err: unknown) => {
        logger.error('drop folder file handling failed', { file, error: describeError(err) });
      })
      .finally(async () => {
        current = undefined;
        // A file dropped under the same name meanwhile is looked at before anyone is told the folder is idle.
        if (dirty.delete(file) || (!behindStaged(file) && !queue.includes(file))) await notice(file);
        pump();
        checkIdle();
      });
  }

  /** Renames a complete dropped file into a staging subfolder of its own, then processes it from there. */
  async function takeAndProcess(file: string): Promise<void> {
    const slot = path.join(staging, `${utcStamp(new Date())}-${String(++takenSeq).padStart(6, '0')}-${process.pid}`);
    const entry: Staged = { staged: path.join(slot, path.basename(file)), dropped: file };
    try {
      await mkdir(slot, { recursive: true });
      await rename(file, entry.staged);
    } catch (err) {
      await removeSlot(slot);
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // taken away meanwhile
      const st = await stat(file).catch(() => undefined);
      if (st) stuck.set(file, `${st.size}:${st.mtimeMs}`);
      logger.error('drop folder file could not be taken for processing; it stays until it changes or pbxsync restarts', {
        file,
        error: describeError(err),
      });
      return;
    }
    await processStaged(entry);
  }

  async function processStaged(entry: Staged): Promise<void> {
    const { staged, dropped } = entry;
    const startedAt = new Date().toISOString();
    let outcome: FileOutcome;
    try {
      outcome = await onFile(staged, { dropped });
    } catch (err) {
      if (err instanceof LeaveFileInPlace || closed) {
        const runLogger = err instanceof LeaveFileInPlace && err.runId ? logger.child({ runId: err.runId }) : logger;
        const back = await putBack(entry);
        runLogger.warn('drop folder file left in place', {
          file: dropped,
          ...(back ? {} : { stagedAs: staged, why: 'a newer file of the same name was dropped meanwhile; this one goes first' }),
          reason: describeError(err),
        });
        const retryInMs = err instanceof LeaveFileInPlace ? err.retryInMs : undefined;
        if (retryInMs === undefined && back) {
          // Putting it back raised an event: it waits for the next start (or a change), not for that event.
          const st = await stat(dropped).catch(() => undefined);
          if (st) stuck.set(dropped, `${st.size}:${st.mtimeMs}`);
        }
        if (retryInMs !== undefined && !closed) {
          if (back) {
            deferred.set(
              dropped,
              setTimeout(() => {
                deferred.delete(dropped);
                void notice(dropped);
              }, retryInMs),
            );
          } else {
            const timer = setTimeout(() => {
              stagedDeferred.delete(staged);
              if (closed) return;
              stagedQueue.push(entry);
              pump();
            }, retryInMs);
            stagedDeferred.set(staged, { entry, timer });
          }
        }
        return;
      }
      logger.error('drop folder file failed', { file: dropped, error: describeError(err) });
      outcome = {
        status: 'failed',
        report: {
          file: dropped,
          source: options.source ?? '',
          startedAt,
          finishedAt: new Date().toISOString(),
          rows: 0,
          applied: 0,
          rejected: [],
          error: describeError(err),
        },
      };
    }
    const runLogger = outcome.report.runId ? logger.child({ runId: outcome.report.runId }) : logger;
    const report = { ...outcome.report, file: dropped };
    let moved: { movedTo: string; reportPath: string };
    try {
      moved = await moveWithReport(staged, outcome.status, report, settings);
      await removeSlot(path.dirname(staged));
      runLogger.info('drop folder file moved', { file: dropped, status: outcome.status, movedTo: moved.movedTo });
    } catch (err) {
      // As before staging: the file goes back where it was dropped and stays there until it changes.
      const back = await putBack(entry);
      const st = back ? await stat(dropped).catch(() => undefined) : undefined;
      if (st) stuck.set(dropped, `${st.size}:${st.mtimeMs}`);
      runLogger.error('drop folder file could not be moved; it stays until it changes or pbxsync restarts', {
        file: back ? dropped : staged,
        status: outcome.status,
        error: describeError(err),
      });
      return;
    }
    try {
      await options.onMoved?.({ report, status: outcome.status, ...moved });
    } catch (err) {
      runLogger.error('handling of the moved drop folder file failed', { file: dropped, movedTo: moved.movedTo, error: describeError(err) });
    }
  }

  /**
   * Moves a staged file back to where it was dropped, unless a newer file took that name meanwhile (then it
   * stays in the staging folder). Returns whether it went back.
   */
  async function putBack(entry: Staged): Promise<boolean> {
    try {
      await link(entry.staged, entry.dropped);
    } catch {
      return false;
    }
    await unlink(entry.staged).catch(() => undefined);
    await removeSlot(path.dirname(entry.staged));
    return true;
  }

  /** Removes a staging subfolder, and the staging folder once empty (so an idle drop folder shows neither). */
  async function removeSlot(slot: string): Promise<void> {
    await rmdir(slot).catch(() => undefined);
    await rmdir(staging).catch(() => undefined);
  }

  function idle(): boolean {
    return pending.size === 0 && queue.every(behindStaged) && stagedQueue.length === 0 && current === undefined;
  }

  function checkIdle(): void {
    if (!idle() && !closed) return;
    const waiters = idleWaiters;
    idleWaiters = [];
    for (const w of waiters) w();
  }

  /** Picks up files that are in the folder but not known yet (a missed event, or one not delivered yet). */
  async function rescan(): Promise<void> {
    const files = await inboxFiles(root, settings.extensions);
    await Promise.all(
      files.map((file) => {
        if (pending.has(file) || queue.includes(file)) return undefined;
        return notice(file);
      }),
    );
  }

  return {
    async drain(): Promise<void> {
      await ready;
      if (closed) return;
      await rescan();
      if (idle()) return;
      await new Promise<void>((resolve) => {
        idleWaiters.push(resolve);
        checkIdle();
      });
    },
    async close(): Promise<void> {
      if (closed) return currentDone;
      closed = true;
      clearInterval(sweeper);
      for (const retry of deferred.values()) clearTimeout(retry);
      deferred.clear();
      for (const d of stagedDeferred.values()) clearTimeout(d.timer);
      stagedDeferred.clear();
      if (timer) clearTimeout(timer);
      timer = undefined;
      queue.length = 0;
      // Staged files stay in the staging folder: the next start takes them first.
      stagedQueue.length = 0;
      pending.clear();
      await watcher?.close();
      await currentDone;
      checkIdle();
    },
  };
}

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** How often the folder is listed anyway, in case a file-system event was lost. */
const RESCAN_MS = 10_000;

function utcStamp(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return (
    `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}-` +
    `${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`
  );
}

async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

/** Filesystems where hard links are impossible answer with one of these; a copy is the fallback. */
const NO_LINK = new Set(['EXDEV', 'EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EMLINK']);

/**
 * Moves `src` to `dest` without ever replacing an existing `dest` (rename() would, silently, on POSIX):
 * a hard link fails with EEXIST when the name is taken; across filesystems an exclusive copy does the same.
 */
async function moveExclusive(src: string, dest: string): Promise<void> {
  try {
    await link(src, dest);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (!NO_LINK.has(code)) throw err;
    await copyFile(src, dest, fsConstants.COPYFILE_EXCL);
  }
  await unlink(src);
}

/**
 * Moves a file into `settings.processed` or `settings.failed` (created when missing) and writes its report
 * beside it as `<moved name>.report.json` or `.report.csv` (per `settings.report`). A name already taken
 * gets a UTC timestamp suffix before the extension (`users.20250102-030405.csv`, then `-2`, `-3`…): nothing
 * is ever overwritten.
 *
 * The drop-folder watcher calls this for every file; `pbxsync import FILE` may call it too, but whether a
 * one-shot import moves the user's file is the CLI's decision.
 */
export async function moveWithReport(
  file: string,
  status: FileOutcome['status'],
  report: CsvReport,
  settings: Pick<CsvSourceSettings, 'processed' | 'failed' | 'report'>,
): Promise<{ movedTo: string; reportPath: string }> {
  const dir = path.resolve(status === 'processed' ? settings.processed : settings.failed);
  await mkdir(dir, { recursive: true });
  const base = path.basename(file);
  const ext = path.extname(base);
  const stem = base.slice(0, base.length - ext.length);
  const reportExt = settings.report === 'csv' ? '.report.csv' : '.report.json';
  const content = formatReport(report, settings.report);
  const stamp = utcStamp(new Date());
  for (let attempt = 0; attempt < 1000; attempt++) {
    const name = attempt === 0 ? base : `${stem}.${stamp}${attempt > 1 ? `-${attempt}` : ''}${ext}`;
    const movedTo = path.join(dir, name);
    const reportPath = movedTo + reportExt;
    if (await exists(reportPath)) continue;
    try {
      await moveExclusive(file, movedTo);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw err;
    }
    // Whole or not at all: whoever waits for the report (a script, a test) may read it the moment it appears.
    const partial = path.join(dir, `.${path.basename(reportPath)}.tmp`);
    await writeFile(partial, content, 'utf8');
    await rename(partial, reportPath);
    return { movedTo, reportPath };
  }
  throw new Error(`no free name for ${base} in ${dir}`);
}
