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
