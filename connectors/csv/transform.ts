/**
 * Pure row → Identity mapping for CSV sources. No I/O, no state: duplicate detection across rows lives in
 * read.ts.
 */
import type { Identity, RecordIssue } from '../../src/model/index.js';
import type { CsvRow } from './client.js';
import { canonicalColumn, SECRET_COLUMNS } from './columns.js';

/** The 3CX column of the e-mail address: the key of a row without a Number under `keyColumn: auto`. */
export const EMAIL_COLUMN = 'EmailAddress';
/** The 3CX column of the extension: the key under `keyColumn: auto` when a row has it. */
export const NUMBER_COLUMN = 'Number';

/**
 * How the rows of one file are keyed.
 *
 * - `keyColumn: auto` and a header with `Number`: per row, the `Number` when the cell is filled, else the
 *   `EmailAddress` (when the header has it). The 3CX mapping allocates an extension for an empty Number, and
 *   the e-mail is what recognises that row in the next file, before and after it has a number.
 * - `auto` and a header without `Number`: the `EmailAddress`.
 * - Any other setting: that one column, canonicalised like a header cell (`number` → `Number`), so
 *   configuration and file may differ in case; a row with that cell empty is rejected.
 */
export interface CsvKey {
  /** The columns a row's anchor is taken from, in order: the first with a value. */
  columns: readonly string[];
  /**
   * True for `auto`: the anchor may be a Number or an e-mail, so each identity says which (Identity.matchBound)
   * and a row is recognised as the user bound under the other one.
   */
  auto: boolean;
}

/** Resolves the `keyColumn` setting for a file's header (see {@link CsvKey}). */
export function resolveKey(setting: string, header: readonly string[]): CsvKey {
  if (setting.trim().toLowerCase() !== 'auto') return { columns: [canonicalColumn(setting)], auto: false };
  if (!header.includes(NUMBER_COLUMN)) return { columns: [EMAIL_COLUMN], auto: true };
  return { columns: header.includes(EMAIL_COLUMN) ? [NUMBER_COLUMN, EMAIL_COLUMN] : [NUMBER_COLUMN], auto: true };
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

/** The key of one row: the first of the key's columns with a value, and that value as anchor. */
export function rowKey(cells: Readonly<Record<string, string>>, key: CsvKey): { column: string; anchor: string } | undefined {
  for (const column of key.columns) {
    const anchor = anchorOf(cells, column);
    if (anchor !== undefined) return { column, anchor };
  }
  return undefined;
}

/** What a CSV row belongs to. */
export interface CsvTransformContext {
  /** Source name. */
  source: string;
  /** File the row came from, for `origin` and issues. */
  file: string;
  /** The file's key (see {@link resolveKey}). */
  key: CsvKey;
}

/**
 * Either the identity a row describes, with the column its anchor came from, or the reason it describes none.
 */
export type CsvRowResult =
  | { identity: Identity; keyColumn: string; issue?: undefined }
  | { identity?: undefined; keyColumn?: undefined; issue: RecordIssue };

/**
 * Turns one row into an Identity: the key cell is the anchor, the cells are the attributes (as they are: the
 * mapping decides what they mean), no groups, never disabled (a 3CX `Disabled` column is a PBX field the
 * mapping reads, not the source account state). With an `auto` key the identity also says whether its
 * anchor is the extension or the e-mail (`matchBound`). A row with a read problem or without a key yields an
 * issue.
 */
export function csvRowToIdentity(row: CsvRow, ctx: CsvTransformContext): CsvRowResult {
  if (row.problem) {
    // The cells of a broken row may be shifted, so the "key" can be any neighbouring value; it is named as a
    // hint for the reader of the report, but never when it equals a secret cell of the row (a PIN).
    let record = rowKey(row.cells, ctx.key)?.anchor;
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
  const found = rowKey(row.cells, ctx.key);
  if (found === undefined) {
    return { issue: { source: ctx.source, file: ctx.file, line: row.line, ...missingKey(ctx.key) } };
  }
  const identity: Identity = {
    source: ctx.source,
    anchor: found.anchor,
    attributes: row.cells,
    groups: [],
    disabled: false,
    origin: { file: ctx.file, line: row.line },
    // A cell exists for every column of the file, empty or not; a column the file lacks is no cell at all.
    partialAttributes: true,
  };
  if (ctx.key.auto) identity.matchBound = found.column === NUMBER_COLUMN ? 'extension' : 'email';
  return { identity, keyColumn: found.column };
}

/** The issue of a row without a key: the column to fill in, and why. */
function missingKey(key: CsvKey): { field: string; message: string } {
  const [first, second] = key.columns;
  if (!key.auto) return { field: first, message: `no value in key column ${first}` };
  if (second !== undefined) {
    return {
      field: second,
      message: `no ${first} and no ${second}: a row without an extension needs its e-mail address, which recognises it in later files`,
    };
  }
  return first === NUMBER_COLUMN
    ? { field: first, message: `no ${first}, and the file has no ${EMAIL_COLUMN} column to recognise the row by` }
    : { field: first, message: `no value in key column ${first}` };
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
