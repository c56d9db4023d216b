/**
 * Pure row → Identity mapping for CSV sources. No I/O, no state: duplicate detection across rows lives in
 * read.ts.
 */
import type { Identity, RecordIssue } from '../../src/model/index.js';
import type { CsvRow } from './client.js';
import { canonicalColumn, SECRET_COLUMNS } from './columns.js';

/** The column `auto` falls back to when the header has no `Number`. */
const EMAIL_COLUMN = 'EmailAddress';
const NUMBER_COLUMN = 'Number';

/**
 * The key column for a header: `auto` means `Number` when the header has it, else `EmailAddress`; any other
 * setting is canonicalised like a header cell (`number` → `Number`), so configuration and file may differ in
 * case.
 */
export function resolveKeyColumn(setting: string, header: readonly string[]): string {
  if (setting.trim().toLowerCase() === 'auto') return header.includes(NUMBER_COLUMN) ? NUMBER_COLUMN : EMAIL_COLUMN;
  return canonicalColumn(setting);
}

/**
 * The anchor of a row: the trimmed key cell, lower-cased when the key is the e-mail address (mail systems
 * treat the address case-insensitively, so `Anna@X` and `anna@x` are one person). Undefined when empty.
 */
export function anchorOf(cells: Readonly<Record<string, string>>, keyColumn: string): string | undefined {
  const value = cells[keyColumn];
  if (value === undefined || value.length === 0) return undefined;
  return keyColumn === EMAIL_COLUMN ? value.toLowerCase() : value;
}

/** What a CSV row belongs to. */
export interface CsvTransformContext {
  /** Source name. */
  source: string;
  /** File the row came from, for `origin` and issues. */
  file: string;
  /** Resolved key column (see {@link resolveKeyColumn}). */
  keyColumn: string;
}

/** Either the identity a row describes or the reason it describes none. */
export type CsvRowResult = { identity: Identity; issue?: undefined } | { identity?: undefined; issue: RecordIssue };

/**
 * Turns one row into an Identity: the key cell is the anchor, the cells are the attributes (as they are: the
 * mapping decides what they mean), no groups, never disabled (a 3CX `Disabled` column is a PBX field the
 * mapping reads, not the source account state). A row with a read problem or without a key yields an issue.
 */
export function csvRowToIdentity(row: CsvRow, ctx: CsvTransformContext): CsvRowResult {
  if (row.problem) {
    // The cells of a broken row may be shifted, so the "key" can be any neighbouring value; it is named as a
    // hint for the reader of the report, but never when it equals a secret cell of the row (a PIN).
    let record = anchorOf(row.cells, ctx.keyColumn);
    for (const secret of SECRET_COLUMNS) {
      const value = row.cells[secret];
      if (record !== undefined && value && value.toLowerCase() === record.toLowerCase()) record = undefined;
    }
    return {
      issue: {
        source: ctx.source,
        file: ctx.file,
        line: row.line,
        field: row.problem.column,
        record,
        message: row.problem.message,
      },
    };
  }
  const anchor = anchorOf(row.cells, ctx.keyColumn);
  if (anchor === undefined) {
    return {
      issue: {
        source: ctx.source,
        file: ctx.file,
        line: row.line,
        field: ctx.keyColumn,
        message: `no value in key column ${ctx.keyColumn}`,
      },
    };
  }
  return {
    identity: {
      source: ctx.source,
      anchor,
      attributes: row.cells,
      groups: [],
      disabled: false,
      origin: { file: ctx.file, line: row.line },
    },
  };
}

/**
 * The message for a key seen twice in one file: "duplicate extension 1001, first on line 3" (the words
 * follow the key column, so an e-mail keyed file says "duplicate e-mail address").
 */
export function duplicateKeyMessage(keyColumn: string, anchor: string, firstLine: number): string {
  const what =
    keyColumn === NUMBER_COLUMN ? 'extension' : keyColumn === EMAIL_COLUMN ? 'e-mail address' : `${keyColumn} value`;
  return `duplicate ${what} ${anchor}, first on line ${firstLine}`;
}
