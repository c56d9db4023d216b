import path from 'node:path';
import { ensureStateFolder, stateFolderError } from './folder.js';
import { lockResource, type LockOptions } from '../util/lock.js';

export type { LockOptions } from '../util/lock.js';

/** Lock directory inside the state folder (proper-lockfile creates it atomically with mkdir). */
export const LOCK_NAME = 'pbxsync.lock';

/**
 * Takes the state folder's lock so only one pbxsync process applies at a time. Returns the release function.
 * A lock left by a killed process is taken over at once (see lockResource).
 *
 * @throws LockedError "another pbxsync process is applying (lock <file>)" when a live process holds it.
 * @throws StorageError when the state folder cannot be written (permissions, a read-only or full disk).
 */
export async function acquireLock(stateDir: string, options: LockOptions = {}): Promise<() => Promise<void>> {
  const lockPath = path.join(stateDir, LOCK_NAME);
  await ensureStateFolder(stateDir);
  try {
    return await lockResource(stateDir, { ...options, lockPath, lockedMessage: `another pbxsync process is applying (lock ${lockPath})` });
  } catch (err) {
    throw (await stateFolderError(err, stateDir)) ?? err;
  }
}

/** The daemon's lock directory inside the state folder, held for as long as `pbxsync run` runs. */
export const DAEMON_LOCK_NAME = 'pbxsync.daemon.lock';

/**
 * Takes the state folder's daemon lock, so only one `pbxsync run` works on a state folder (two would both
 * watch the inbox and race for its files). Separate from {@link acquireLock}: one-shot commands (sync,
 * import, plan) keep working next to a running daemon, taking the apply lock per run as the daemon does.
 * Held for the daemon's lifetime; a lock left by a killed daemon is taken over at once (see lockResource).
 *
 * @throws LockedError naming the state folder and the pid of the daemon holding it, when one runs.
 * @throws StorageError naming the state folder when it is not a folder or cannot be created.
 */
export async function acquireDaemonLock(stateDir: string, options: LockOptions = {}): Promise<() => Promise<void>> {
  await ensureStateFolder(stateDir);
  const lockPath = path.join(stateDir, DAEMON_LOCK_NAME);
  // WARNING: proper-lockfile keys the locks a process holds by resource, so this one must not be stateDir
  // (the apply lock's): the daemon holds both, and releasing one would stop refreshing the other.
  return lockResource(path.join(stateDir, 'pbxsync.daemon'), {
    ...options,
    lockPath,
    lockedMessage: (pid) =>
      `another pbxsync daemon${pid ? ` (pid ${pid})` : ''} is already running on the state folder ${path.resolve(stateDir)} ` +
      `(lock ${lockPath}); stop it first, or give this one another stateDir`,
  });
}
