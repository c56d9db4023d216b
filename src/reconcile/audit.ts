/**
 * The audit log (DESIGN §6.7): one JSON line per operation applied to the PBX (or refused by it), saying
 * which source record and which mapping rule it follows. `<stateDir>/audit/<YYYY-MM>.jsonl`, a file a month
 * (UTC), appended after each checkpoint once its writes are durable, so a line is never about a change a crash
 * undid. WARNING: the other way round it is not exact: a crash between a checkpoint's commit and its audit
 * lines leaves those changes in the PBX (and the journal) without a line. A month's file of a few hundred
 * changes is a few hundred KB; a first import of 100,000 users ~35 MB.
 */
import { mkdir, open } from 'node:fs/promises';
import { BufferedFileWriter } from '../util/buffered-writer.js';
import path from 'node:path';
import type { UserFieldName, UserFields } from '../model/index.js';
import { maskOperation } from './serialize.js';
import type { Operation, Plan } from './types.js';

/** One line of the audit log. */
export interface AuditEntry {
  at: string;
  runId: string;
  result: 'applied' | 'failed';
  op: Operation['kind'];
  extension: string;
  userId?: string;
  source?: string;
  anchor?: string;
  /** The source record: `<file>:<line>`, or the file alone. */
  record?: string;
  reason: string;
  /** The fields an update, adoption, enable or disable changed. */
  fields?: UserFieldName[];
  /** Their values before and after (secrets masked); a create's values are the user's, in the PBX. */
  before?: Partial<UserFields>;
  after?: Partial<UserFields>;
  /** The mapping rule each changed field follows. */
  rules?: Partial<Record<UserFieldName, string>>;
  /** A create's mapping file (every field it sets follows that file's rule for the field). */
  mapping?: string;
  error?: string;
}

/**
 * The audit entry of one operation of `plan` (pure). Properties that do not apply are undefined, which
 * JSON leaves out: one object shape for every entry (a 100,000-user import writes 100,000 of them).
 */
export function auditEntry(plan: Plan, op: Operation, outcome: { at: string; userId?: string; error?: string }): AuditEntry {
  const origin = op.origin;
  const source = op.key && plan.sources.find((s) => s.source === op.key!.source);
  const sourceRules = source?.rules;
  const changes = op.kind !== 'create' && op.fields?.length ? op.fields : undefined;
  const masked = changes && maskOperation(op);
  return {
    at: outcome.at,
    runId: plan.runId,
    result: outcome.error === undefined ? 'applied' : 'failed',
    op: op.kind,
    extension: op.extension,
    userId: outcome.userId ?? op.userId,
    source: op.key?.source,
    anchor: op.key?.anchor,
    record: origin?.file ? (origin.line === undefined ? origin.file : `${origin.file}:${origin.line}`) : undefined,
    reason: op.reason,
    fields: changes,
    before: masked?.before,
    after: masked?.after,
    rules: changes && sourceRules ? pickRules(sourceRules, changes) : undefined,
    // Not every rule on every create's line (~0.8 KB a user): the file, whose rule for each field the plan lists.
    mapping: op.kind === 'create' ? source?.mappingFile : undefined,
    error: outcome.error,
  };
}

function pickRules(rules: Readonly<Partial<Record<UserFieldName, string>>>, fields: UserFieldName[]): Partial<Record<UserFieldName, string>> | undefined {
  const out: Partial<Record<UserFieldName, string>> = {};
  let any = false;
  for (const f of fields) {
    const rule = rules[f];
    if (rule) {
      out[f] = rule;
      any = true;
    }
  }
  return any ? out : undefined;
}

/** Bytes gathered before each write of the audit file: a checkpoint of 1,000 creates is ~350 KB. */
const WRITE_CHUNK_BYTES = 256 << 10;

/** Appends audit entries to the month's file under `dir` (`<stateDir>/audit`). */
export class AuditLog {
  constructor(readonly dir: string) {}

  /** The file entries written at `at` go to. */
  fileFor(at: Date): string {
    return path.join(this.dir, `${at.toISOString().slice(0, 7)}.jsonl`);
  }

  /** Appends the entries (to the month of the first; a checkpoint is seconds long). */
  async append(entries: readonly AuditEntry[]): Promise<void> {
    if (entries.length === 0) return;
    await mkdir(this.dir, { recursive: true });
    const handle = await open(this.fileFor(new Date(entries[0].at)), 'a', 0o640);
    try {
      const out = new BufferedFileWriter(handle, Buffer.allocUnsafe(WRITE_CHUNK_BYTES));
      for (const e of entries) {
        const line = JSON.stringify(e) + '\n';
        // Synchronous while the buffer has room: no promise per line.
        if (!out.tryAdd(line)) await out.add(line);
      }
      await out.flush();
    } finally {
      await handle.close();
    }
  }
}
