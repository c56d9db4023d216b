import fs from 'node:fs';
import { mkdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import lockfile from 'proper-lockfile';
import { LockedError } from '../errors/index.js';

/** Options of {@link lockResource}. */
export interface LockOptions {
  /** A lock not refreshed for this long is stale (its owner hung or died). Default 10 s. */
  staleMs?: number;
  /** Called when the lock was lost while held (e.g. the state folder vanished); default: ignored. */
  onCompromised?: (err: Error) => void;
}

/**
 * The owner's pid lives inside the lock directory, so a pid file is always the current lock's (a new lock is a
 * new directory). proper-lockfile removes locks with rmdir, which a non-empty directory refuses, hence the
 * recursive variants.
 */
const lockFs = {
  ...fs,
  rmdir: (p: string, cb: (err: NodeJS.ErrnoException | null) => void) => fs.rm(p, { recursive: true, force: true }, cb),
  rmdirSync: (p: string) => fs.rmSync(p, { recursive: true, force: true }),
};

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes an exclusive lock on `resource` (a directory `lockPath` created atomically). Returns the release
 * function.
 *
 * proper-lockfile refreshes the lock's mtime while held and treats it as stale after `staleMs`, so a
 * kill -9 never blocks forever. On top of that the owner's pid is written into the lock: when that
 * process is gone (same host), the lock is taken over at once instead of after the stale period, so a
 * run started right after a crash does not fail.
 *
 * @throws LockedError with `lockedMessage` (given the holder's pid when the lock names one) when a live
 *   process holds it.
 */
export async function lockResource(
  resource: string,
  options: LockOptions & { lockPath: string; lockedMessage: string | ((holderPid: number | undefined) => string) },
): Promise<() => Promise<void>> {
  const lockPath = options.lockPath;
  await mkdir(path.dirname(lockPath), { recursive: true });
  const pidFile = path.join(lockPath, 'pid');
  const lockOptions = {
    lockfilePath: lockPath,
    realpath: false,
    stale: options.staleMs ?? 10_000,
    retries: 0,
    fs: lockFs,
    onCompromised: options.onCompromised ?? (() => undefined),
  };
  const take = async (): Promise<() => Promise<void>> => {
    const release = await lockfile.lock(resource, lockOptions);
    // WARNING: writing into the lock directory changes its mtime, and proper-lockfile compares the mtime
    // with the one it set to detect a stolen lock: restore it, or the lock reports itself compromised at
    // its first refresh.
    const before = await stat(lockPath);
    await writeFile(pidFile, String(process.pid));
    await utimes(lockPath, before.atime, before.mtime);
    return release;
  };
  try {
    return await take();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ELOCKED') throw err;
    const pid = Number(await readFile(pidFile, 'utf8').catch(() => ''));
    const named = Number.isInteger(pid) && pid > 0;
    if (named && pid !== process.pid && !alive(pid)) {
      await rm(lockPath, { recursive: true, force: true });
      try {
        return await take();
      } catch (again) {
        if ((again as NodeJS.ErrnoException).code !== 'ELOCKED') throw again;
      }
    }
    const message = typeof options.lockedMessage === 'string' ? options.lockedMessage : options.lockedMessage(named ? pid : undefined);
    throw new LockedError(message, { cause: err });
  }
}
