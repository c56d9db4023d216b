import fs from 'node:fs/promises';
import path from 'node:path';
import type { Adapter } from 'lowdb';
import type { StoreDocument } from './store.js';
import { syncFolder } from '../../util/fs.js';
import { BufferedFileWriter } from '../../util/buffered-writer.js';

/** Bytes read per read call when streaming the document or the journal. */
const READ_CHUNK = 1 << 20;

/** The first line of a document in the one-user-per-line layout ends so (the head with `users` last). */
const HEAD_END = '"users":[';

/** A first line longer than this is not the line layout's head (a single-line document): read it whole. */
const MAX_HEAD_LINE = 4 << 20;

/**
 * The lowdb adapter of the store document. Like lowdb's JSONFile it writes a temp file and renames it over
 * the document (atomic: a reader sees the old or the new document, never a mix), but it streams the users
 * in chunks instead of building one string: for 100,000 users JSON.stringify would hold a ~100 MB string
 * plus its UTF-8 buffer at once, which is most of the import's memory budget. It also fsyncs the file
 * before the rename and the folder after it, so a committed document survives a power cut.
 *
 * Layout: still one JSON document, with one user per line so it can be read a line at a time (without
 * holding the whole text and the parsed graph at once):
 *
 *     {"version":1,"installId":"…","seq":3,"departments":[…],"users":[
 *     {"id":"…",…},
 *     {"id":"…",…}
 *     ]}
 *
 * Any other layout (an older single-line document, a hand-edited or pretty-printed one) is read whole with
 * JSON.parse, as before; the next write turns it into this layout.
 */
export class JsonDocumentFile implements Adapter<StoreDocument> {
  private readonly temp: string;

  constructor(private readonly file: string) {
    this.temp = path.join(path.dirname(file), `.${path.basename(file)}.tmp`);
  }

  async read(): Promise<StoreDocument | null> {
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(this.file, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    try {
      const doc = await readLineLayout(handle);
      if (doc) return doc;
      // Not the line layout (or not valid in it): the whole text, with JSON.parse's own error if it is bad.
      // Through the same handle (positional reads left its position at 0): the same file the line reader saw.
      return JSON.parse(await handle.readFile('utf8')) as StoreDocument;
    } finally {
      await handle.close();
    }
  }

  async write(doc: StoreDocument): Promise<void> {
    const { users, ...head } = doc;
    const handle = await fs.open(this.temp, 'w', 0o600);
    try {
      // A temp file left by a crash keeps its old mode through open('w'), and the rename would pass it on.
      await handle.chmod(0o600);
      const prefix = JSON.stringify({ ...head, users: [] });
      // `{"version":1,...,"users":[` + one user per line + `]}`: the head's own serialisation with the array
      // left open.
      await handle.write(prefix.slice(0, -2) + '\n');
      const out = new BufferedFileWriter(handle);
      await out.addJsonLines(users);
      await out.flush();
      await handle.write(']}\n');
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

/**
 * Reads a document in the one-user-per-line layout; undefined when the file is not in it (the caller then
 * parses the whole text). Only one read buffer and one line are held at a time, besides the users parsed.
 */
async function readLineLayout(handle: fs.FileHandle): Promise<StoreDocument | undefined> {
  let head: StoreDocument | undefined;
  let closed = false;
  const users: StoreDocument['users'] = [];
  const ok = await forEachLine(
    handle,
    (line) => {
      if (!head) {
        if (!line.endsWith(HEAD_END)) return false;
        try {
          head = JSON.parse(line + ']}') as StoreDocument;
        } catch {
          return false;
        }
        if (!Array.isArray(head.users) || head.users.length !== 0) return false;
        head.users = users;
        return true;
      }
      if (closed) return line.trim() === '';
      if (line === ']}') {
        closed = true;
        return true;
      }
      const json = line.endsWith(',') ? line.slice(0, -1) : line;
      try {
        users.push(JSON.parse(json));
      } catch {
        return false;
      }
      return true;
    },
    MAX_HEAD_LINE,
  );
  // The last user line has no comma, every other one has: checked loosely (a missing or extra comma is
  // JSON.parse's business in the fallback, which reports it as it always did).
  return ok.complete && ok.tail.trim() === '' && head && closed ? head : undefined;
}

/**
 * Calls `onLine` with each complete line of the file (without its `\n`) and its end offset in bytes (just
 * past the `\n`), reading a chunk at a time. Stops early when `onLine` returns false. `firstLineLimit`
 * gives up (complete: false) when the first line is longer. Returns the text after the last `\n` (a line
 * still being written, or the last line of a file without a final newline), its offset and the bytes read.
 */
export async function forEachLine(
  handle: fs.FileHandle,
  onLine: (line: string, endOffset: number) => boolean,
  firstLineLimit = Infinity,
): Promise<{ complete: boolean; tail: string; tailOffset: number; size: number }> {
  const buffer = Buffer.allocUnsafe(READ_CHUNK);
  // Pieces of a line that spans reads.
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let offset = 0;
  let lineStart = 0;
  let first = true;
  for (;;) {
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, offset);
    if (bytesRead === 0) break;
    let at = 0;
    for (;;) {
      const nl = buffer.indexOf(0x0a, at);
      if (nl < 0 || nl >= bytesRead) break;
      let line: string;
      if (pendingBytes > 0) {
        pending.push(buffer.subarray(at, nl));
        line = Buffer.concat(pending).toString('utf8');
        pending = [];
        pendingBytes = 0;
      } else {
        line = buffer.toString('utf8', at, nl);
      }
      first = false;
      lineStart = offset + nl + 1;
      if (!onLine(line, lineStart)) return { complete: false, tail: '', tailOffset: lineStart, size: offset + bytesRead };
      at = nl + 1;
    }
    if (at < bytesRead) {
      // Copied: the read buffer is reused.
      pending.push(Buffer.from(buffer.subarray(at, bytesRead)));
      pendingBytes += bytesRead - at;
      if (first && pendingBytes > firstLineLimit) return { complete: false, tail: '', tailOffset: lineStart, size: offset + bytesRead };
    }
    offset += bytesRead;
  }
  return { complete: true, tail: pendingBytes > 0 ? Buffer.concat(pending).toString('utf8') : '', tailOffset: lineStart, size: offset };
}

