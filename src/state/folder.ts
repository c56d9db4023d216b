/**
 * The state folder itself (`stateDir`): created when missing, and when it cannot be, an error that names the
 * folder and says what to fix. Every command that opens the state folder goes through here (the state store,
 * the apply lock, the daemon lock), so `import`, `status`, `export`, `run`… all report an unusable folder the
 * same way, as a StorageError (exit 1), instead of a bare `EEXIST: file already exists, mkdir …`.
 */
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { StorageError, asStorageError } from '../errors/index.js';

/**
 * Creates the state folder when it is missing.
 * @throws StorageError naming the folder when it cannot be a folder or cannot be created (see {@link stateFolderError}).
 */
export async function ensureStateFolder(stateDir: string): Promise<void> {
  try {
    await mkdir(stateDir, { recursive: true });
  } catch (err) {
    throw (await stateFolderError(err, stateDir)) ?? err;
  }
}

/** The nearest path from `dir` up that exists, with what it is; undefined when none can be looked at. */
async function nearestExisting(dir: string): Promise<{ path: string; isDirectory: boolean; isFile: boolean } | undefined> {
  for (let p = dir; ; p = path.dirname(p)) {
    const st = await stat(p).catch(() => undefined);
    if (st) return { path: p, isDirectory: st.isDirectory(), isFile: st.isFile() };
    if (path.dirname(p) === p) return undefined;
  }
}

/** Per error code, what the admin can do about a state folder that cannot be created or written. */
const FIXES: Record<string, string> = {
  EACCES: 'let the user pbxsync runs as create and write it, or point stateDir at a folder it may write',
  EPERM: 'let the user pbxsync runs as create and write it, or point stateDir at a folder it may write',
  EROFS: 'it is on a read-only filesystem; point stateDir at a writable folder',
  ENOSPC: 'the disk is full; free some space',
  EDQUOT: 'the disk quota is used up; free some space',
};

/**
 * `err`, raised while opening the state folder `stateDir`, as a {@link StorageError} that names the folder and
 * what to fix:
 * - the folder, or a folder on its path, is a file (EEXIST or ENOTDIR from mkdir): `state folder /srv/x is not
 *   a folder (it is a file): …`;
 * - the folder cannot be created for lack of permission, a read-only or a full disk: `state folder /srv/x
 *   cannot be created (EACCES): …`;
 * - any other failure of the machine (see asStorageError) inside the folder, as asStorageError says it.
 * Undefined for errors that are not the machine's (a state file that does not parse).
 */
export async function stateFolderError(err: unknown, stateDir: string): Promise<StorageError | undefined> {
  if (err instanceof StorageError) return err;
  const dir = path.resolve(stateDir);
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const failedPath = (err as NodeJS.ErrnoException | undefined)?.path;
  if (code === 'EEXIST' || code === 'ENOTDIR') {
    const blocker = await nearestExisting(dir);
    if (blocker && !blocker.isDirectory) {
      const kind = blocker.isFile ? 'a file' : 'neither a file nor a folder';
      const what = blocker.path === dir ? `it is ${kind}` : `${blocker.path} on its path is ${kind}`;
      return new StorageError(
        `state folder ${dir} is not a folder (${what}): point stateDir in the configuration at a folder, or move ${blocker.path} out of the way`,
        { cause: err, folder: dir },
      );
    }
  }
  // mkdir of the folder (or of a missing folder above it) refused: the folder itself cannot be created.
  const fix = code ? FIXES[code] : undefined;
  if (fix && failedPath !== undefined && (dir + path.sep).startsWith(path.resolve(failedPath) + path.sep)) {
    return new StorageError(`state folder ${dir} cannot be created (${code}): ${fix}`, { cause: err, folder: dir });
  }
  return asStorageError(err, dir);
}
