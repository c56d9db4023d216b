import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { asStorageError } from '../errors/index.js';
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
  try {
    await mkdir(stateDir, { recursive: true });
    return await lockResource(stateDir, { ...options, lockPath, lockedMessage: `another pbxsync process is applying (lock ${lockPath})` });
  } catch (err) {
    throw asStorageError(err, stateDir) ?? err;
  }
}
