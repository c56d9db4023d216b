import { closeSync, fstatSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { readFile, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { redact } from '../log.js';
import { isoClock } from '../util/clock.js';
import { keyString, type IdentityKey } from '../model/index.js';
import type { Operation, OperationKind, PendingCreate } from './types.js';

/**
 * One record of `journal.jsonl`: a line of its own, or one operation of a {@link BatchLine}. Never holds field
 * values, so never a secret.
 */
export interface JournalRecord {
  ts: string;
  runId: string;
  opId: string;
  kind: OperationKind;
  key?: IdentityKey;
  extension: string;
  phase: 'start' | 'done' | 'failed';
  error?: string;
  /** failed only: the failure may have left the write done on the PBX side (timeout, 5xx). */
  retryable?: boolean;
}

/**
 * One line of the file holding the records of several operations of one run and phase ('start' or 'done'):
 * `{"ts","runId","phase","ops":[[opId, kind, source, anchor, extension], …]}` (source and anchor null for an
 * operation without an identity). Operations announced or confirmed together share one line: a 100,000-user
 * import wrote 200,000 single records (~38 MB) before, a third of that now. {@link readJournalRecords} gives
 * them back as single records.
 */
interface BatchLine {
  ts: string;
  runId: string;
  phase: 'start' | 'done';
  ops: Array<[string, OperationKind, string | null, string | null, string]>;
}

/** File name of the journal inside the state folder. */
export const JOURNAL_FILE = 'journal.jsonl';

/**
 * An unsettled create start: what recovery needs, and what compaction writes back as its 'start' record.
 * WARNING: fields, not the record itself: one is tracked for every create of a run and settled at its
 * checkpoint, so a record, a key copy and an id string per create were ~25 MB of garbage over a
 * 100,000-user import, all of it promoted to the old generation before it died.
 */
interface PendingStart {
  ts: string;
  runId: string;
  opId: string;
  key: IdentityKey;
  extension: string;
}

/**
 * key string → its unsettled starts, oldest first (nearly always one, so not a Map per key: one per
 * created user cost more than the records); see {@link Journal.settle} for the rules.
 */
type PendingIndex = Map<string, PendingStart | PendingStart[]>;

/** What the journal object knows the file holds, when it knows (see Journal.known). */
interface KnownFile {
  /** -1: the file did not exist when read (and this object has not created it yet). */
  ino: number;
  /** Bytes in the file: what was read plus what this object appended since. */
  size: number;
  pending: PendingIndex;
}

/**
 * The apply journal: an append-only JSON-lines file recording each operation before ('start') and after
 * ('done' / 'failed') it reaches the PBX, so a crashed run can be recovered without duplicates.
 *
 * Records are buffered and written in batches (group commit) because one write per record would make a
 * 100,000-operation run spend seconds in syscalls. Two buffers keep the ordering that recovery relies on:
 * - starts are flushed before the write they announce (apply awaits {@link flushStarts} before each target
 *   call, concurrent callers share one write), so a write can never be durable without its 'start';
 * - 'done' records are flushed only after `target.commit()` and the bindings were saved, so a 'done' on disk
 *   always means the user exists and is bound.
 */
export class Journal {
  /** Starts not written yet: run ids and operations side by side (grouped into batch lines on write). */
  private startRuns: string[] = [];
  private startOps: Operation[] = [];
  /** 'done' (run id and operation) and 'failed' (its line) records not written yet, in order. */
  private completions: Array<string | { runId: string; op: Operation }> = [];
  /** Serialises writes to the file; each write is chained after the previous one. */
  private tail: Promise<void> = Promise.resolve();
  private scheduledStarts?: Promise<void>;

  /** Absolute path of the journal file. */
  readonly file: string;
  /** Opened on first write, so constructing a Journal does no I/O. */
  private fd?: number;
  /**
   * The unsettled create starts of the whole file, kept up to date as records are buffered, once the file
   * was read (pendingCreates) or rewritten (compact) by this object. Lets compact() skip re-reading and
   * re-parsing the file after a run: for a 100,000-user import that is 200,000 records (~40 MB) parsed just to
   * find the few still unsettled. Trusted only while the file's inode and size are what this object left
   * (another process appending or compacting changes them); otherwise the file is read as before.
   */
  private known?: KnownFile;
  private readonly timestamp: () => string;

  /** A journal at `options.file` (usually `<stateDir>/journal.jsonl`); the file is created on first write. */
  constructor(options: { file: string; clock?: () => Date }) {
    this.file = path.resolve(options.file);
    this.timestamp = isoClock(options.clock ?? (() => new Date()));
  }

  /** A journal at `<stateDir>/journal.jsonl`. */
  static async open(stateDir: string, options: { clock?: () => Date } = {}): Promise<Journal> {
    return new Journal({ file: path.join(stateDir, JOURNAL_FILE), clock: options.clock });
  }

  private descriptor(): number {
    if (this.fd === undefined) {
      mkdirSync(path.dirname(this.file), { recursive: true });
      this.fd = openSync(this.file, 'a');
      if (this.known) {
        const st = fstatSync(this.fd);
        if ((this.known.ino !== -1 && st.ino !== this.known.ino) || st.size !== this.known.size) this.known = undefined;
        else this.known.ino = st.ino;
      }
    }
    return this.fd;
  }

  /** Settles a record into the known index (when there is one). */
  private track(rec: JournalRecord): void {
    if (this.known) Journal.settle(this.known.pending, rec);
  }

  /** The key of an identity in the index of unsettled starts. */
  private static indexKey(key: IdentityKey): string {
    return `${key.source}/${key.anchor}`;
  }

  private static record(ts: string, runId: string, op: Operation, phase: JournalRecord['phase'], error?: string, retryable?: boolean): JournalRecord {
    // Built in JournalRecord's key order without spreads; JSON.stringify leaves out the undefined ones.
    return {
      ts,
      runId,
      opId: op.id,
      kind: op.kind,
      key: op.key ? { source: op.key.source, anchor: op.key.anchor } : undefined,
      extension: op.extension,
      phase,
      error,
      retryable,
    };
  }

  /** Buffers a 'start' record; call {@link flushStarts} before the write it announces. */
  start(runId: string, op: Operation): void {
    this.startRuns.push(runId);
    this.startOps.push(op);
    if (this.known && op.kind === 'create' && op.key) {
      Journal.addStart(this.known.pending, { ts: this.timestamp(), runId, opId: op.id, key: op.key, extension: op.extension });
    }
  }

  /** Buffers a 'done' record (written by {@link flushCompletions}). */
  done(runId: string, op: Operation): void {
    this.completions.push({ runId, op });
    // What settle does with a 'done', without building the record.
    if (this.known && op.key) this.known.pending.delete(Journal.indexKey(op.key));
  }

  /** Buffers a 'failed' record. The message is passed through secret redaction. */
  failed(runId: string, op: Operation, error: string, retryable: boolean): void {
    const rec = Journal.record(this.timestamp(), runId, op, 'failed', redact(error), retryable);
    this.completions.push(JSON.stringify(rec) + '\n');
    this.track(rec);
  }

  /** Batch lines for consecutive operations of the same run (see {@link BatchLine}). */
  private batchLines(phase: BatchLine['phase'], runs: string[], ops: Operation[], out: string[]): void {
    const ts = this.timestamp();
    for (let i = 0; i < ops.length; ) {
      const runId = runs[i];
      const rows: BatchLine['ops'] = [];
      for (; i < ops.length && runs[i] === runId; i++) {
        const op = ops[i];
        rows.push([op.id, op.kind, op.key ? op.key.source : null, op.key ? op.key.anchor : null, op.extension]);
      }
      const line: BatchLine = { ts, runId, phase, ops: rows };
      out.push(JSON.stringify(line) + '\n');
    }
  }

  private write(take: () => string): Promise<void> {
    const p = this.tail.then(async () => {
      const chunk = take();
      // A synchronous append of a few KB to the page cache costs microseconds; an async write costs a
      // thread-pool round trip, which dominated a 100,000-operation run. The data is in the kernel (it
      // survives kill -9) when this returns.
      if (!chunk) return;
      try {
        writeSync(this.descriptor(), chunk);
      } catch (err) {
        // Part of the chunk may or may not be in the file now: stop trusting the in-memory view.
        this.known = undefined;
        throw err;
      }
      if (this.known) this.known.size += Buffer.byteLength(chunk);
    });
    this.tail = p.catch(() => undefined);
    return p;
  }

  /**
   * Writes every buffered 'start'. Callers arriving while a write is queued but not started join it, so N
   * concurrent operations cost about one write, not N.
   */
  flushStarts(): Promise<void> {
    if (this.scheduledStarts) return this.scheduledStarts;
    const p = this.write(() => {
      // From here on new starts go into the next write.
      this.scheduledStarts = undefined;
      const lines: string[] = [];
      this.batchLines('start', this.startRuns, this.startOps, lines);
      this.startRuns = [];
      this.startOps = [];
      return lines.join('');
    });
    this.scheduledStarts = p;
    return p;
  }

  /** Writes buffered 'done'/'failed' records (after the target committed and bindings were saved). */
  flushCompletions(): Promise<void> {
    return this.write(() => {
      const lines: string[] = [];
      const runs: string[] = [];
      const ops: Operation[] = [];
      for (const c of this.completions) {
        if (typeof c !== 'string') {
          runs.push(c.runId);
          ops.push(c.op);
          continue;
        }
        this.batchLines('done', runs, ops, lines);
        runs.length = 0;
        ops.length = 0;
        lines.push(c);
      }
      this.batchLines('done', runs, ops, lines);
      this.completions = [];
      return lines.join('');
    });
  }

  /** Writes everything buffered, starts first. */
  async flush(): Promise<void> {
    await this.flushStarts();
    await this.flushCompletions();
  }

  /** The file's records, with its inode and size and whether it ends on a complete line. */
  private async readRecords(): Promise<{ records: JournalRecord[]; ino?: number; size: number; clean: boolean }> {
    let buf: Buffer;
    let ino: number;
    try {
      // stat first: an append between the two calls makes the size differ from the bytes read (clean=false).
      ino = (await stat(this.file)).ino;
      buf = await readFile(this.file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { records: [], size: 0, clean: true };
      throw err;
    }
    const text = buf.toString('utf8');
    const clean = text.length === 0 || text.endsWith('\n');
    const result = (records: JournalRecord[]) => ({ records, ino, size: buf.length, clean });
    const parsed = parseJournalText(text);
    return { records: parsed.records, ino, size: buf.length, clean: clean && parsed.clean };
  }

  /**
   * Applies one record to the index of unsettled create starts:
   * - a create's 'start' adds it;
   * - any 'done' for the identity (its create, or the recovery adopt of a later run) settles the identity;
   * - a 'failed' that is not retryable (conflict, validation: nothing was created) settles that start. A
   *   retryable failure (timeout, 5xx) may have created the user anyway, so it stays pending.
   */
  private static settle(pending: PendingIndex, r: JournalRecord): void {
    if (!r.key) return;
    const ks = Journal.indexKey(r.key);
    if (r.phase === 'start') {
      if (r.kind === 'create') Journal.addStart(pending, { ts: r.ts, runId: r.runId, opId: r.opId, key: r.key, extension: r.extension });
    } else if (r.phase === 'done') {
      pending.delete(ks);
    } else if (!r.retryable) {
      const had = pending.get(ks);
      const same = (p: PendingStart) => Journal.sameStart(p, r);
      // An emptied key stays in the index (as an empty list): its place in the order is kept, as before.
      if (had === undefined) return;
      if (!Array.isArray(had)) {
        if (same(had)) pending.set(ks, []);
      } else {
        const i = had.findIndex(same);
        if (i >= 0) had.splice(i, 1);
      }
    }
  }

  /** A create's 'start' into the index: see {@link settle}. */
  private static addStart(pending: PendingIndex, start: PendingStart): void {
    const ks = Journal.indexKey(start.key);
    const same = (p: PendingStart) => Journal.sameStart(p, start);
    const had = pending.get(ks);
    if (had === undefined) pending.set(ks, start);
    else if (!Array.isArray(had)) pending.set(ks, same(had) ? start : [had, start]);
    else {
      // Same id again: replaced in place, as a Map keeps an existing key's position.
      const i = had.findIndex(same);
      if (i >= 0) had[i] = start;
      else had.push(start);
    }
  }

  /** True when `p` is the start of the operation `op` names (run and operation id). */
  private static sameStart(p: PendingStart, op: { runId: string; opId: string }): boolean {
    return p.runId === op.runId && p.opId === op.opId;
  }

  /** The 'start' record of an unsettled create, as compaction writes it back. */
  private static startRecord(p: PendingStart): JournalRecord {
    return { ts: p.ts, runId: p.runId, opId: p.opId, kind: 'create', key: { source: p.key.source, anchor: p.key.anchor }, extension: p.extension, phase: 'start' };
  }

  private static starts(pending: PendingIndex): PendingStart[] {
    return [...pending.values()].flatMap((m) => m);
  }

  /**
   * The unsettled create starts of the file: from memory when this object knows the file is as it left it,
   * else read (and from then on known, when the file ended on a complete line).
   */
  private async pendingIndex(): Promise<PendingIndex> {
    await this.flush();
    await this.tail;
    if (this.known) {
      const st = await stat(this.file).catch(() => undefined);
      const same = st ? st.ino === this.known.ino && st.size === this.known.size : this.known.ino === -1 && this.known.size === 0;
      if (same) return this.known.pending;
      this.known = undefined;
    }
    const read = await this.readRecords();
    const pending: PendingIndex = new Map();
    for (const r of read.records) Journal.settle(pending, r);
    // Known from here on only when nothing is buffered that was not settled into this index, and when the
    // file ends on a complete line (a torn last line would glue the next appended record onto it; a fresh
    // read must keep deciding what that gives).
    if (read.clean && this.startOps.length === 0 && this.completions.length === 0) {
      this.known = { ino: read.ino ?? -1, size: read.size, pending };
    }
    return pending;
  }

  /**
   * Creates journaled as started but never confirmed, from earlier runs (read once, in one pass). Feed them
   * to the planner as `PlanState.pendingCreates`.
   */
  async pendingCreates(): Promise<PendingCreate[]> {
    const recs = Journal.starts(await this.pendingIndex());
    const byKey = new Map<string, PendingCreate>();
    for (const r of recs) byKey.set(keyString(r.key), { key: { source: r.key.source, anchor: r.key.anchor }, extension: r.extension });
    return [...byKey.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, v]) => v);
  }

  /**
   * Rotates the journal after a run that finished cleanly: the old file becomes `journal.1.jsonl` (one
   * generation kept for audit) and the new one holds only the still-unsettled create starts, so the journal
   * never grows without bound and recovery information is never lost.
   */
  async compact(): Promise<void> {
    const pending = await this.pendingIndex();
    const keep = Journal.starts(pending).map((p) => JSON.stringify(Journal.startRecord(p)) + '\n').join('');
    this.closeFd();
    this.known = undefined;
    const tmp = `${this.file}.tmp`;
    await writeFile(tmp, keep);
    await rename(this.file, path.join(path.dirname(this.file), 'journal.1.jsonl')).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
    await rename(tmp, this.file);
    const ino = (await stat(this.file)).ino;
    if (this.startOps.length === 0 && this.completions.length === 0) this.known = { ino, size: Buffer.byteLength(keep), pending };
  }

  private closeFd(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  /** Flushes and closes the file. */
  async close(): Promise<void> {
    await this.flush();
    await this.tail;
    this.closeFd();
  }
}

/**
 * The records of a journal's text, batch lines expanded into single records, in file order. `clean` is false
 * when a line could not be parsed (a kill -9 can cut the last one short; a half-written record was never
 * followed by its write, so it is skipped).
 */
function parseJournalText(text: string): { records: JournalRecord[]; clean: boolean } {
  const body = text.trimEnd();
  if (!body) return { records: [], clean: true };
  let lines: Array<JournalRecord | BatchLine>;
  let clean = true;
  try {
    // One parser call for the whole file is several times faster than one per line.
    lines = JSON.parse(`[${body.replace(/\n+/g, ',')}]`) as Array<JournalRecord | BatchLine>;
  } catch {
    clean = false;
    lines = [];
    for (const line of body.split('\n')) {
      if (!line) continue;
      try {
        lines.push(JSON.parse(line) as JournalRecord | BatchLine);
      } catch {
        // skip the damaged line
      }
    }
  }
  const records: JournalRecord[] = [];
  for (const l of lines) {
    if (!('ops' in l)) {
      records.push(l);
      continue;
    }
    for (const [opId, kind, source, anchor, extension] of l.ops) {
      records.push({
        ts: l.ts,
        runId: l.runId,
        opId,
        kind,
        key: source !== null && anchor !== null ? { source, anchor } : undefined,
        extension,
        phase: l.phase,
      });
    }
  }
  return { records, clean };
}

/**
 * Every record of a journal file as single records (batch lines expanded), in file order; a torn last line
 * is skipped. For tests and tools: the running system reads the journal through {@link Journal}.
 */
export async function readJournalRecords(file: string): Promise<JournalRecord[]> {
  const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return '';
    throw err;
  });
  return parseJournalText(text).records;
}
