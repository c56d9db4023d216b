/**
 * Writes PBX users in the 3CX CSV import format (seeds/000), so an export can be edited in a spreadsheet and
 * imported into 3CX, or dropped back into pbxsync.
 */
import { stringify } from 'csv-stringify/sync';
import type { PbxUser } from '../../src/model/index.js';
import { canonicalColumn, isThreeCxColumn, SECRET_COLUMNS, THREECX_COLUMNS, type ThreeCxColumn } from './columns.js';

const flag = (b: boolean): string => (b ? '1' : '0');

/** The 3CX import row of one user, keyed by column. Secret columns stay empty. */
export function threeCxRow(user: PbxUser): Record<ThreeCxColumn, string> {
  const row = Object.fromEntries(THREECX_COLUMNS.map((c) => [c, ''])) as Record<ThreeCxColumn, string>;
  // Free-form options first, so the typed fields below win where both speak about one column.
  for (const [key, value] of Object.entries(user.options ?? {})) {
    const column = canonicalColumn(key);
    if (isThreeCxColumn(column) && !SECRET_COLUMNS.has(column)) row[column] = value ?? '';
  }
  const phone = user.phones[0];
  row.Number = user.extension;
  row.FirstName = user.firstName;
  row.LastName = user.lastName;
  row.EmailAddress = user.email ?? '';
  row.MobileNumber = user.mobile ?? '';
  row.OutboundCallerID = user.outboundCallerId ?? '';
  row.DID = user.dids.join(';');
  // The exact form the 3CX importer reads; csv-stringify quotes it and doubles the inner quotes.
  row.Role = `<rolename="${user.role}"/>`;
  row.Department = user.department;
  row.MAC = phone?.mac ?? '';
  row.Template = phone?.template ?? '';
  row.Model = phone?.model ?? '';
  row.Language = user.language ?? '';
  row.VMEnable = flag(user.vmEnabled);
  row.RecordCalls = flag(user.recordCalls);
  row.HideInPhonebook = flag(user.hideInPhonebook);
  row.Disabled = flag(!user.enabled);
  // Never exported, whatever options say: the PIN is a secret (invariant 6).
  row.VMPIN = '';
  return row;
}

/** Rows per chunk of {@link threeCxCsvChunks}. */
const ROWS_PER_CHUNK = 500;

const CSV_OPTIONS = { record_delimiter: '\r\n' } as const;

/**
 * The users as a 3CX import CSV, in chunks of text (the header, then a few hundred rows each) so that an export
 * of a large PBX never holds all of it: the full 3CX header in the 3CX order, one row per user in the given
 * order, CRLF line ends (what Excel and the 3CX importer expect), no BOM. Cells with commas, quotes or line
 * breaks are quoted per RFC 4180. Options keyed by names that are not 3CX columns are not written; `vmPin`
 * never is.
 */
export async function* threeCxCsvChunks(users: AsyncIterable<PbxUser> | Iterable<PbxUser>): AsyncGenerator<string> {
  yield stringify([[...THREECX_COLUMNS]], CSV_OPTIONS);
  let rows: string[][] = [];
  for await (const user of users) {
    const row = threeCxRow(user);
    rows.push(THREECX_COLUMNS.map((c) => row[c]));
    if (rows.length === ROWS_PER_CHUNK) {
      yield stringify(rows, CSV_OPTIONS);
      rows = [];
    }
  }
  if (rows.length > 0) yield stringify(rows, CSV_OPTIONS);
}

/** {@link threeCxCsvChunks} as one string. */
export async function formatThreeCxCsv(users: AsyncIterable<PbxUser> | Iterable<PbxUser>): Promise<string> {
  let text = '';
  for await (const chunk of threeCxCsvChunks(users)) text += chunk;
  return text;
}
