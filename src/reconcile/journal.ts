import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { redact } from '../log.js';
import { keyString, type IdentityKey } from '../model/index.js';
import type { Operation, OperationKind, PendingCreate } from './types.js';

/** One line of `journal.jsonl`. Never holds field values, so never a secret. */
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

/** File name of the journal inside the state folder. */
export const JOURNAL_FILE = 'journal.jsonl';

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
  private starts: string[] = [];
  private completions: string[] = [];
  /** Serialises writes to the file; each write is chained after the previous one. */
  private tail: Promise<void> = Promise.resolve();
  private scheduledStarts?: Promise<void>;

  /** Absolute path of the journal file. */
  readonly file: string;
  private readonly clock: () => Date;
  /** Opened on first write, so constructing a Journal does no I/O. */
  private fd?: number;

  /** A journal at `options.file` (usually `<stateDir>/journal.jsonl`); the file is created on first write. */
  constructor(options: { file: string; clock?: () => Date }) {
    this.file = path.resolve(options.file);
    this.clock = options.clock ?? (() => new Date());
  }

  /** A journal at `<stateDir>/journal.jsonl`. */
  static async open(stateDir: string, options: { clock?: () => Date } = {}): Promise<Journal> {
    return new Journal({ file: path.join(stateDir, JOURNAL_FILE), clock: options.clock });
  }

  private descriptor(): number {
    if (this.fd === undefined) {
      mkdirSync(path.dirname(this.file), { recursive: true });
      this.fd = openSync(this.file, 'a');
    }
    return this.fd;
  }

  private record(runId: string, op: Operation, phase: JournalRecord['phase'], extra?: Partial<JournalRecord>): string {
    const rec: JournalRecord = {
      ts: this.clock().toISOString(),
      runId,
      opId: op.id,
      kind: op.kind,
      ...(op.key ? { key: { source: op.key.source, anchor: op.key.anchor } } : {}),
      extension: op.extension,
      phase,
      ...extra,
    };
    return JSON.stringify(rec) + '\n';
  }

  /** Buffers a 'start' record; call {@link flushStarts} before the write it announces. */
  start(runId: string, op: Operation): void {
    this.starts.push(this.record(runId, op, 'start'));
  }

  /** Buffers a 'done' record (written by {@link flushCompletions}). */
  done(runId: string, op: Operation): void {
    this.completions.push(this.record(runId, op, 'done'));
  }

  /** Buffers a 'failed' record. The message is passed through secret redaction. */
  failed(runId: string, op: Operation, error: string, retryable: boolean): void {
    this.completions.push(this.record(runId, op, 'failed', { error: redact(error), retryable }));
  }

  private write(take: () => string): Promise<void> {
    const p = this.tail.then(async () => {
      const chunk = take();
      // A synchronous append of a few KB to the page cache costs microseconds; an async write costs a
      // thread-pool round trip, which dominated a 100,000-operation run. The data is in the kernel (it
      // survives kill -9) when this returns.
      if (chunk) writeSync(this.descriptor(), chunk);
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
      const chunk = this.starts.join('');
      this.starts = [];
      return chunk;
    });
    this.scheduledStarts = p;
    return p;
  }

  /** Writes buffered 'done'/'failed' records (after the target committed and bindings were saved). */
  flushCompletions(): Promise<void> {
    return this.write(() => {
      const chunk = this.completions.join('');
      this.completions = [];
      return chunk;
    });
  }

  /** Writes everything buffered, starts first. */
  async flush(): Promise<void> {
    await this.flushStarts();
    await this.flushCompletions();
  }

  private async readRecords(): Promise<JournalRecord[]> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const body = text.trimEnd();
    if (!body) return [];
    try {
      // One parser call for the whole file is several times faster than one per line.
      return JSON.parse(`[${body.replace(/\n+/g, ',')}]`) as JournalRecord[];
    } catch {
      // A kill -9 can cut the last line short; a half-written record was never followed by its write.
    }
    const out: JournalRecord[] = [];
    for (const line of body.split('\n')) {
      if (!line) continue;
      try {
        out.push(JSON.parse(line) as JournalRecord);
      } catch {
        // skip the damaged line
      }
    }
    return out;
  }

  private static pendingStarts(records: JournalRecord[]): JournalRecord[] {
    // key string → (runId opId → start record); indexed by key so settling is O(1) per record.
    const pending = new Map<string, Map<string, JournalRecord>>();
    for (const r of records) {
      if (!r.key) continue;
      const ks = `${r.key.source}/${r.key.anchor}`;
      const id = `${r.runId} ${r.opId}`;
      if (r.phase === 'start') {
        if (r.kind !== 'create') continue;
        const m = pending.get(ks) ?? new Map<string, JournalRecord>();
        m.set(id, r);
        pending.set(ks, m);
      } else if (r.phase === 'done') {
        // Any success for the identity (its create, or the recovery adopt of a later run) settles it.
        pending.delete(ks);
      } else if (!r.retryable) {
        // Refused for good (conflict, validation): nothing was created. A retryable failure (timeout, 5xx)
        // may have created the user anyway, so it stays pending.
        pending.get(ks)?.delete(id);
      }
    }
    return [...pending.values()].flatMap((m) => [...m.values()]);
  }

  /**
   * Creates journaled as started but never confirmed, from earlier runs (read once, in one pass). Feed them
   * to the planner as `PlanState.pendingCreates`.
   */
  async pendingCreates(): Promise<PendingCreate[]> {
    await this.flush();
    const recs = Journal.pendingStarts(await this.readRecords());
    const byKey = new Map<string, PendingCreate>();
    for (const r of recs) byKey.set(keyString(r.key as IdentityKey), { key: r.key as IdentityKey, extension: r.extension });
    return [...byKey.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, v]) => v);
  }

  /**
   * Rotates the journal after a run that finished cleanly: the old file becomes `journal.1.jsonl` (one
   * generation kept for audit) and the new one holds only the still-unsettled create starts, so the journal
   * never grows without bound and recovery information is never lost.
   */
  async compact(): Promise<void> {
    await this.flush();
    await this.tail;
    const keep = Journal.pendingStarts(await this.readRecords());
    this.closeFd();
    const tmp = `${this.file}.tmp`;
    await writeFile(tmp, keep.map((r) => JSON.stringify(r) + '\n').join(''));
    await rename(this.file, path.join(path.dirname(this.file), 'journal.1.jsonl')).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
    await rename(tmp, this.file);
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
