import fs from 'node:fs/promises';
import path from 'node:path';
import { PbxsyncError } from '../errors/index.js';
import type { IdentityKey } from '../model/index.js';
import type { Binding } from '../reconcile/types.js';
import { syncFolder } from '../util/fs.js';

/** File name of the bindings snapshot inside the state folder (written only when the log is folded). */
export const BINDINGS_FILE = 'bindings.json';

/** File name of the bindings log inside the state folder: the changes since the snapshot, one per line. */
export const BINDINGS_LOG_FILE = 'state.bindings.log';

/**
 * One change of the bindings, as {@link StateStore} made it, replayed by calling the same method again:
 * `p` putBinding, `r` removeBinding, `d` setDisabledAt (null clears).
 */
export type LogEntry = ['p', Binding] | ['r', IdentityKey] | ['d', IdentityKey, string | null];

/**
 * A line of the log after its header: an array of up to {@link PER_CHUNK} changes (one JSON.stringify per
 * chunk, not per change: per-change calls cost twice as much on a 100,000-user import), or the line that
 * closes a save, `{"saved":n}` with the number of changes since the previous one. Changes without their
 * closing line were cut short by a crash and are not replayed, so a save is all or nothing, as the
 * single-file rewrite was.
 */
type LogLine = LogEntry[] | { saved: number };

/** The document in `bindings.json`. */
interface BindingsSnapshot {
  version: 1;
  /** Bumped at each fold; the log's header names the generation it applies to. */
  generation: number;
  bindings: Binding[];
}

/** The first line of the log. */
interface LogHeader {
  bindingsLog: 1;
  generation: number;
}

/** The log's first line for a generation. */
export function logHeader(generation: number): string {
  const header: LogHeader = { bindingsLog: 1, generation };
  return JSON.stringify(header) + '\n';
}

/** What this process knows the files hold; the log is appended to only while it is exactly so. */
export interface KnownFiles {
  /** Generation of `bindings.json`; 0: there is none (a new state folder, or one from before the log). */
  generation: number;
  /** Bindings in the snapshot, and changes in the log's complete saves (what a load reads). */
  snapshotRecords: number;
  logRecords: number;
  /** Inode and size of the log this process can append to; size -1: none (missing, stale or unknown). */
  logIno: number;
  logSize: number;
}

/** What {@link readBindings} found. */
export interface ReadBindings {
  /** The snapshot's bindings, or undefined when there is no `bindings.json`. */
  snapshot?: Binding[];
  /** The changes of the log's complete saves, when the log applies to the snapshot, in order. */
  entries: LogEntry[];
  known: KnownFiles;
}

/**
 * Bindings (or changes) stringified per JSON.stringify call and write call: few calls and syscalls, no
 * string the size of the whole file.
 */
const PER_CHUNK = 1000;

const NEWLINE = 0x0a;

function isMissing(err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === 'ENOENT';
}

async function readOrNull(file: string): Promise<Buffer | null> {
  try {
    return await fs.readFile(file);
  } catch (err) {
    if (isMissing(err)) return null;
    throw err;
  }
}

function parseJson(buf: Buffer, start: number, end: number): unknown {
  try {
    return JSON.parse(buf.toString('utf8', start, end));
  } catch {
    return undefined;
  }
}

function isHeader(v: unknown): v is LogHeader {
  return typeof v === 'object' && v !== null && (v as LogHeader).bindingsLog === 1 && Number.isInteger((v as LogHeader).generation);
}

function isEntry(v: unknown): v is LogEntry {
  if (!Array.isArray(v) || typeof v[1] !== 'object' || v[1] === null) return false;
  switch (v[0]) {
    case 'p':
    case 'r':
      return v.length === 2;
    case 'd':
      return v.length === 3 && (v[2] === null || typeof v[2] === 'string');
    default:
      return false;
  }
}

function isLine(v: unknown): v is LogLine {
  if (Array.isArray(v)) return v.every(isEntry);
  return typeof v === 'object' && v !== null && Number.isInteger((v as { saved: number }).saved);
}

/**
 * The changes of the log's complete saves. A save is complete when its closing `{"saved":n}` line was
 * written whole (newline included) with the right count; what follows the last complete save was cut short
 * by a crash and is dropped. An unreadable line with a complete save after it is damage, not a torn tail,
 * and is refused. `validBytes`: where the last complete save ends.
 */
export function parseLog(buf: Buffer, file: string): { header: LogHeader; entries: LogEntry[]; validBytes: number } {
  const first = buf.indexOf(NEWLINE);
  const header = first < 0 ? undefined : parseJson(buf, 0, first);
  if (!isHeader(header)) throw new PbxsyncError(`${file} does not start with a bindings log header; move it aside to start from ${BINDINGS_FILE}`, { code: 'STATE_CORRUPT' });
  const entries: LogEntry[] = [];
  let batch: LogEntry[] = [];
  let validBytes = first + 1;
  let pos = first + 1;
  let damagedAt: number | undefined;
  while (pos < buf.length) {
    const nl = buf.indexOf(NEWLINE, pos);
    if (nl < 0) break; // the torn last line
    const line = parseJson(buf, pos, nl);
    const lineNo = pos;
    pos = nl + 1;
    if (!isLine(line)) {
      damagedAt ??= lineNo;
      continue;
    }
    if (damagedAt !== undefined) {
      if (!Array.isArray(line)) {
        throw new PbxsyncError(`${file} is damaged at byte ${damagedAt} (an unreadable line before a complete save); restore it or move it aside`, {
          code: 'STATE_CORRUPT',
        });
      }
      continue;
    }
    if (!Array.isArray(line)) {
      if (line.saved !== batch.length) {
        throw new PbxsyncError(`${file} is damaged at byte ${lineNo} (a save of ${line.saved} changes holds ${batch.length})`, { code: 'STATE_CORRUPT' });
      }
      for (const e of batch) entries.push(e);
      batch = [];
      validBytes = pos;
    } else {
      for (const e of line) batch.push(e);
    }
  }
  return { header, entries, validBytes };
}

/**
 * Reads `bindings.json` and the log. The log applies only when its header names the snapshot's generation:
 * an older one is a log a fold had already taken in (the process stopped between writing the snapshot and
 * resetting the log). A newer one means another process folded between the two reads: read again.
 */
export async function readBindings(stateDir: string): Promise<ReadBindings> {
  const snapshotFile = path.join(stateDir, BINDINGS_FILE);
  const logFile = path.join(stateDir, BINDINGS_LOG_FILE);
  for (let attempt = 0; ; attempt++) {
    const snapBuf = await readOrNull(snapshotFile);
    const snap = snapBuf ? (JSON.parse(snapBuf.toString('utf8')) as BindingsSnapshot) : undefined;
    if (snap && (!Number.isInteger(snap.generation) || !Array.isArray(snap.bindings))) {
      throw new PbxsyncError(`${snapshotFile} is not a bindings snapshot`, { code: 'STATE_CORRUPT' });
    }
    const generation = snap?.generation ?? 0;
    let handle: fs.FileHandle | undefined;
    try {
      handle = await fs.open(logFile, 'r');
    } catch (err) {
      if (!isMissing(err)) throw err;
    }
    const known: KnownFiles = { generation, snapshotRecords: snap?.bindings.length ?? 0, logRecords: 0, logIno: -1, logSize: -1 };
    if (!handle) return { snapshot: snap?.bindings, entries: [], known };
    let logBuf: Buffer;
    let ino: number;
    try {
      ino = (await handle.stat()).ino;
      logBuf = await handle.readFile();
    } finally {
      await handle.close();
    }
    const log = parseLog(logBuf, logFile);
    if (log.header.generation > generation) {
      if (attempt < 20) {
        await new Promise((r) => setTimeout(r, 25));
        continue;
      }
      throw new PbxsyncError(`${logFile} is newer than ${snapshotFile} (generation ${log.header.generation} > ${generation}); was ${BINDINGS_FILE} removed?`, {
        code: 'STATE_CORRUPT',
      });
    }
    if (log.header.generation < generation) return { snapshot: snap?.bindings, entries: [], known };
    known.logIno = ino;
    known.logSize = log.validBytes;
    known.logRecords = log.entries.length;
    return { snapshot: snap?.bindings, entries: log.entries, known };
  }
}


/** Writes `file` through a temp file: written, fsync'd, renamed over it, folder fsync'd. Returns its size. */
async function writeAtomic(file: string, write: (handle: fs.FileHandle) => Promise<void>): Promise<number> {
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.tmp`);
  const handle = await fs.open(temp, 'w', 0o600);
  let size: number;
  try {
    await write(handle);
    await handle.sync();
    size = (await handle.stat()).size;
  } catch (err) {
    await handle.close().catch(() => undefined);
    await fs.rm(temp, { force: true });
    throw err;
  }
  await handle.close();
  await fs.rename(temp, file);
  await syncFolder(path.dirname(file));
  return size;
}

/**
 * Folds: writes all bindings as `bindings.json` of the next generation, then an empty log for it. In that
 * order, each step durable before the next: a crash between them leaves the new snapshot and the old log,
 * which the generation check then ignores. The bindings are streamed in chunks, never one big string.
 */
export async function writeSnapshot(stateDir: string, generation: number, bindings: Binding[]): Promise<KnownFiles> {
  await writeAtomic(path.join(stateDir, BINDINGS_FILE), async (handle) => {
    await handle.writeFile(`{"version":1,"generation":${generation},"bindings":[`);
    for (let i = 0; i < bindings.length; i += PER_CHUNK) {
      // `[b1,b2,…]` without its brackets.
      await handle.writeFile((i === 0 ? '' : ',') + JSON.stringify(bindings.slice(i, i + PER_CHUNK)).slice(1, -1));
    }
    await handle.writeFile(']}');
  });
  const logFile = path.join(stateDir, BINDINGS_LOG_FILE);
  const logSize = await writeAtomic(logFile, async (handle) => {
    await handle.writeFile(logHeader(generation));
  });
  const logIno = (await fs.stat(logFile)).ino;
  return { generation, snapshotRecords: bindings.length, logRecords: 0, logIno, logSize };
}

/** One batch (a save) as log text, in chunks, with its size in bytes; ends with the line that closes it. */
export function serializeBatch(entries: LogEntry[]): { chunks: string[]; bytes: number } {
  const chunks: string[] = [];
  let bytes = 0;
  for (let i = 0; i < entries.length; i += PER_CHUNK) {
    const text = JSON.stringify(entries.slice(i, i + PER_CHUNK)) + '\n';
    chunks.push(text);
    bytes += Buffer.byteLength(text);
  }
  const close = `{"saved":${entries.length}}\n`;
  chunks.push(close);
  bytes += close.length;
  return { chunks, bytes };
}

/**
 * Appends one batch to the log and fsyncs it, when the log is still exactly what `known` says (same file,
 * same size: no other process wrote it, no torn tail). Returns false, having written nothing, when it was
 * not so (the caller folds instead).
 */
export async function appendBatch(stateDir: string, known: KnownFiles, batch: { chunks: string[] }): Promise<boolean> {
  if (known.logSize < 0) return false;
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(path.join(stateDir, BINDINGS_LOG_FILE), 'a');
  } catch (err) {
    if (isMissing(err)) return false;
    throw err;
  }
  try {
    const st = await handle.stat();
    if (st.ino !== known.logIno || st.size !== known.logSize) return false;
    for (const chunk of batch.chunks) await handle.writeFile(chunk);
    await handle.datasync();
    return true;
  } finally {
    await handle.close();
  }
}
