/**
 * The report written beside every processed or failed drop-folder file, for the people who dropped it.
 */
import { stringify } from 'csv-stringify/sync';
import type { RecordIssue } from '../../src/model/index.js';
import { redact } from '../../src/log.js';

/**
 * What kind of problem a report entry is: `rejected`, a row (or the file) the reader, the mapping or the planner
 * refused, so nothing was tried for it; `conflict`, a row whose values collide with a PBX user pbxsync does not
 * manage; `failed`, a row whose operation the PBX refused or that could not be applied.
 */
export type CsvRejectionKind = 'rejected' | 'conflict' | 'failed';

/** One rejected input row (or, with line 0, a problem with the file as a whole). */
export interface CsvRejection {
  /** 1-based line in the file; 0 when the problem is not about one line. */
  line: number;
  /** What kind of problem it is: the entries are in line order, so the kind is no longer told by position. */
  kind: CsvRejectionKind;
  /** Column (canonical name) the problem is in. */
  column?: string;
  /** The row's key (extension, e-mail) when known. */
  record?: string;
  /** Why the row was rejected. Names columns, never repeats secret values. */
  reason: string;
}

/** What happened to one CSV file. */
export interface CsvReport {
  /** The file as it was dropped (its original path). */
  file: string;
  source: string;
  runId?: string;
  /** ISO 8601. */
  startedAt: string;
  /** ISO 8601. */
  finishedAt: string;
  /** Data rows read. */
  rows: number;
  /** Operations applied to the PBX. */
  applied: number;
  /** Every problem, in line order (see {@link inLineOrder}): file-level ones (line 0) first. */
  rejected: CsvRejection[];
  /** Operations that failed (also listed in `rejected`, with their error). */
  failed?: number;
  /** Plan counts (create, update, …). */
  summary?: Record<string, number>;
  /** Why the plan was held by a safety guard, or null. */
  held?: string | null;
  /** Why the file could not be processed at all. */
  error?: string;
}

/** A reader or pipeline issue as a report row. */
export function rejectionFromIssue(issue: RecordIssue): CsvRejection {
  const out: CsvRejection = { line: issue.line ?? 0, kind: 'rejected', reason: issue.message };
  if (issue.field !== undefined) out.column = issue.field;
  if (issue.record !== undefined) out.record = issue.record;
  return out;
}

/**
 * The entries sorted by line, as the admin who fixes the file reads it (top to bottom); file-level entries
 * (line 0) first, since they may explain the rest. The sort is stable: entries of one line keep the order they
 * were given in (rejected, then conflict, then failed as the report is assembled). Returns a new array.
 */
export function inLineOrder(entries: readonly CsvRejection[]): CsvRejection[] {
  return [...entries].sort((a, b) => a.line - b.line);
}

/**
 * The report with every registered secret masked (see src/log.ts `registerSecret`). A last line of defence:
 * messages are written to name a column ("VMPIN must have 4 digits"), never its value.
 */
export function redactReport(report: CsvReport): CsvReport {
  const r = (s: string | undefined): string | undefined => (s === undefined ? undefined : redact(s));
  const out: CsvReport = {
    ...report,
    file: redact(report.file),
    rejected: report.rejected.map((x) => {
      const y: CsvRejection = { ...x, reason: redact(x.reason) };
      if (x.record !== undefined) y.record = redact(x.record);
      return y;
    }),
  };
  if (report.error !== undefined) out.error = r(report.error);
  if (typeof report.held === 'string') out.held = redact(report.held);
  return out;
}

/** The report as pretty JSON (secrets masked). */
export function formatJsonReport(report: CsvReport): string {
  return JSON.stringify(redactReport(report), null, 2) + '\n';
}

/**
 * Spreadsheet apps run a cell starting with `=`, `+`, `-` or `@` as a formula; the report is opened in Excel
 * by the same people who dropped the file, and its `record` cells echo file content. A leading `'` makes
 * Excel show the text as it is.
 */
function defuse(cell: string): string {
  const c = cell.charCodeAt(0);
  return c === 61 || c === 43 || c === 45 || c === 64 || c === 9 || c === 13 ? `'${cell}` : cell;
}

/**
 * The report as CSV with the columns `line,column,record,reason,kind`. The rows without a line come first: a
 * file-level error (kind `error`), a held plan (kind `held`); then one row per entry of `rejected`, in its
 * order (line order, see {@link inLineOrder}). Secrets masked. `kind` comes last so that a script reading the
 * first four columns by position keeps working.
 */
export function formatCsvReport(report: CsvReport): string {
  const safe = redactReport(report);
  const rows: string[][] = [['line', 'column', 'record', 'reason', 'kind']];
  if (safe.error) rows.push(['', '', '', defuse(`file not processed: ${safe.error}`), 'error']);
  if (safe.held) rows.push(['', '', '', defuse(`plan held: ${safe.held}`), 'held']);
  for (const x of safe.rejected) {
    rows.push([x.line > 0 ? String(x.line) : '', x.column ?? '', defuse(x.record ?? ''), defuse(x.reason), x.kind]);
  }
  return stringify(rows, { record_delimiter: '\r\n' });
}

/** The report in the configured format. */
export function formatReport(report: CsvReport, format: 'json' | 'csv'): string {
  return format === 'csv' ? formatCsvReport(report) : formatJsonReport(report);
}
