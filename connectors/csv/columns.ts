/**
 * The columns of the 3CX V20 CSV user import (seeds/000 "Importing users from a CSV file"), in the order the
 * 3CX sample file has them. The export writes exactly this header; the reader maps any spelling of these
 * names onto them.
 */
export const THREECX_COLUMNS = [
  'Number',
  'FirstName',
  'LastName',
  'EmailAddress',
  'MobileNumber',
  'OutboundCallerID',
  'DID',
  'Role',
  'Department',
  'ClickToCallId',
  'ClickToCallAuth',
  'WMApprove',
  'MAC',
  'Template',
  'Model',
  'Router',
  'Language',
  'Ringtone',
  'QRingtone',
  'VMEnable',
  'VMLanguage',
  'VMPlayMsgDateTime',
  'VMPIN',
  'VMEmailOptions',
  'VMNoPin',
  'VMPlayCallerID',
  'RecordCalls',
  'RecordExternal',
  'RecordCanSee',
  'RecordCanDelete',
  'RecordStartStop',
  'Disabled',
  'HideFWrules',
  'DisableExternalCalls',
  'HideInPhonebook',
  'CallScreening',
  'PinProtected',
  'PinTimeout',
  'AllowLanOnly',
  'SIPID',
  'MS365SignInDisabled',
  'MS365CalendarDisabled',
  'MS365ContactsDisabled',
  'MS365TeamsDisabled',
  'GoogleSignInDisabled',
] as const;

/** A column name of the 3CX CSV import format. */
export type ThreeCxColumn = (typeof THREECX_COLUMNS)[number];

/**
 * Columns whose values are secrets. They are read (a mapping may keep a voicemail PIN from the file) but never
 * written by the export and never echoed in a report.
 */
export const SECRET_COLUMNS: ReadonlySet<string> = new Set<string>(['VMPIN']);

/**
 * Lookup key of a header name: lower case without spaces, `_` and `-`. People retype 3CX headers as
 * "First Name", "first_name" or "E-Mail Address"-like variants; one Map lookup per header cell replaces a
 * regex per comparison.
 */
function lookupKey(name: string): string {
  let out = '';
  for (let i = 0; i < name.length; i++) {
    const c = name[i];
    if (c !== ' ' && c !== '_' && c !== '-' && c !== '\u00a0') out += c;
  }
  return out.toLowerCase();
}

const CANONICAL = new Map<string, ThreeCxColumn>(THREECX_COLUMNS.map((c) => [lookupKey(c), c]));

/**
 * The canonical spelling of a header cell: a 3CX column name when the trimmed cell matches one ignoring case,
 * spaces, `_` and `-` (`" emailaddress "` → `EmailAddress`, `First Name` → `FirstName`); any other name
 * trimmed and otherwise unchanged.
 */
export function canonicalColumn(name: string): string {
  const trimmed = name.trim();
  return CANONICAL.get(lookupKey(trimmed)) ?? trimmed;
}

/** True when `name` (already canonical) is one of the 3CX import columns. */
export function isThreeCxColumn(name: string): name is ThreeCxColumn {
  return CANONICAL.get(lookupKey(name)) === name;
}
