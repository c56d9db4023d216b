import fs from 'node:fs/promises';
import path from 'node:path';
import type { Adapter } from 'lowdb';
import type { StoreDocument } from './store.js';

/** Users serialised per write call: big enough to be few syscalls, small enough to keep memory flat. */
const USERS_PER_CHUNK = 1000;

/**
 * The lowdb adapter of the store document. Like lowdb's JSONFile it writes a temp file and renames it over
 * the document (atomic: a reader sees the old or the new document, never a mix), but it streams the users
 * in chunks instead of building one string: for 100,000 users JSON.stringify would hold a ~75 MB string
 * plus its ~75 MB UTF-8 buffer at once, which is most of the import's memory budget. It also fsyncs the
 * file before the rename and the folder after it, so a committed document survives a power cut.
 */
export class JsonDocumentFile implements Adapter<StoreDocument> {
  private readonly temp: string;

  constructor(private readonly file: string) {
    this.temp = path.join(path.dirname(file), `.${path.basename(file)}.tmp`);
  }

  async read(): Promise<StoreDocument | null> {
    let text: string;
    try {
      text = await fs.readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    return JSON.parse(text) as StoreDocument;
  }

  async write(doc: StoreDocument): Promise<void> {
    const { users, ...head } = doc;
    const handle = await fs.open(this.temp, 'w', 0o600);
    try {
      const prefix = JSON.stringify({ ...head, users: [] });
      // `{"version":1,...,"users":[` + users + `]}`: the head's own serialisation with the array left open.
      await handle.write(prefix.slice(0, -2));
      for (let i = 0; i < users.length; i += USERS_PER_CHUNK) {
        const chunk = users.slice(i, i + USERS_PER_CHUNK).map((u) => JSON.stringify(u));
        await handle.write((i === 0 ? '' : ',') + chunk.join(','));
      }
      await handle.write(']}');
      await handle.sync();
    } catch (err) {
      await handle.close().catch(() => undefined);
      await fs.rm(this.temp, { force: true });
      throw err;
    }
    await handle.close();
    await fs.rename(this.temp, this.file);
    await syncFolder(path.dirname(this.file));
  }
}

async function syncFolder(folder: string): Promise<void> {
  const handle = await fs.open(folder, 'r');
  try {
    await handle.sync();
  } catch (err) {
    // Some file systems refuse fsync on folders; the rename is still atomic there.
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'EISDIR' && code !== 'EPERM') throw err;
  } finally {
    await handle.close();
  }
}
