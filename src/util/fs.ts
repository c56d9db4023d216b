import fs from 'node:fs/promises';

/**
 * fsyncs a folder so that a rename into it survives a power cut. Some file systems refuse fsync on folders;
 * the rename is still atomic there, so those refusals are ignored.
 */
export async function syncFolder(folder: string): Promise<void> {
  const handle = await fs.open(folder, 'r');
  try {
    await handle.sync();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'EISDIR' && code !== 'EPERM') throw err;
  } finally {
    await handle.close();
  }
}

/**
 * Takes group and other permissions off a file that holds secrets (a mode wider than `mode` is narrowed to
 * it). Returns the mode it had when it was changed, else undefined (already tight, or no such file).
 * Needed besides creating such files 0600: an existing file keeps its mode when written again, and files
 * written by older versions, by hand or under another umask may be group- or world-readable.
 */
export async function tightenMode(file: string, mode = 0o600): Promise<number | undefined> {
  const st = await fs.stat(file).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (!st || (st.mode & 0o777 & ~mode) === 0) return undefined;
  await fs.chmod(file, mode);
  return st.mode & 0o777;
}
