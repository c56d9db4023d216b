import { parseRole, type PbxUser, type PhoneSpec, type RoleName, type UserFields } from '../../model/index.js';
import type { Logger } from '../../log.js';
import type { XapiPhone, XapiUser, XapiUserGroup } from './types.js';

/**
 * Pure conversions between 3CX's `Pbx.User` and pbxsync's PbxUser/UserFields.
 *
 * The rule that shapes everything here: a user that nobody changed must compare EQUAL to what the mapping
 * wants, or every sync writes (DESIGN §6.1). 3CX fills in things by itself — empty strings where nothing
 * was set, a default language, memberships in whatever order, upper-case MACs from provisioning, numbers
 * as typed in the console — so reading folds all of that into pbxsync's canonical forms (UserFields TSDoc).
 */

/** `$select` of the user listing: every property the conversion reads (3CX sends ~80 otherwise). */
export const USER_SELECT = [
  'Id',
  'Number',
  'FirstName',
  'LastName',
  'DisplayName',
  'EmailAddress',
  'Mobile',
  'OutboundCallerID',
  'Language',
  'Enabled',
  'Require2FA',
  'VMEnabled',
  'VMPIN',
  'HideInPhonebook',
  'RecordCalls',
  'PrimaryGroupId',
].join(',');

/** `$expand` of the user listing: memberships with their role, and phones. */
export const USER_EXPAND = 'Groups($expand=Rights),Phones';

type OptionKind = 'flag' | 'text' | 'int' | readonly string[];

/** How one CSV option column maps onto a `Pbx.User` property. */
export interface OptionColumn {
  prop: string;
  kind: OptionKind;
  /** A flag whose CSV meaning is the opposite of the property (`MS365SignInDisabled` ↔ `MS365SignInEnabled`). */
  negate?: boolean;
}

const VM_EMAIL_OPTIONS = ['None', 'Notification', 'Attachment', 'AttachmentAndDelete', 'VmailToMembers', 'EmailToExtrasOnly'] as const;
const VM_PLAY_DATE_TIME = ['None', 'Play12Hr', 'Play24Hr'] as const;

/**
 * 3CX CSV import columns (the names admins know from spreadsheets, kept in `UserFields.options`) that have a
 * clear `Pbx.User` counterpart in XAPI. Flags are "0"/"1" in the CSV and booleans in XAPI; enumerations take
 * the XAPI name or the CSV's number (its position in the list: `VMEmailOptions` 1 = Notification). Both the
 * V20 header of the shipped mapping (seeds/000: `ClickToCallId`, `PinProtected`, `RecordCanSee`, ...) and the
 * older V18 names (`ClickToCallFriendlyName`, `PinProtect`, `CanSeeRecordings`, ...) are known. Columns
 * without a counterpart (e.g. `AuthPassword`, `Ringtone`, `VMLanguage`, `PhoneModel14`, `QueueStatus` with its
 * CSV-only coding) are not stored by this target; see {@link canonicalOptions}.
 */
export const OPTION_COLUMNS: Readonly<Record<string, OptionColumn>> = {
  // V20 header (seeds/000, mappings/3cx-csv.yml)
  ClickToCallId: { prop: 'ClickToCallId', kind: 'text' },
  WMApprove: { prop: 'WebMeetingApproveParticipants', kind: 'flag' },
  VMPlayMsgDateTime: { prop: 'VMPlayMsgDateTime', kind: VM_PLAY_DATE_TIME },
  VMEmailOptions: { prop: 'VMEmailOptions', kind: VM_EMAIL_OPTIONS },
  VMNoPin: { prop: 'VMDisablePinAuth', kind: 'flag' },
  VMPlayCallerID: { prop: 'VMPlayCallerID', kind: 'flag' },
  RecordExternal: { prop: 'RecordExternalCallsOnly', kind: 'flag' },
  RecordCanSee: { prop: 'MyPhoneShowRecordings', kind: 'flag' },
  RecordCanDelete: { prop: 'MyPhoneAllowDeleteRecordings', kind: 'flag' },
  HideFWrules: { prop: 'MyPhoneHideForwardings', kind: 'flag' },
  CallScreening: { prop: 'CallScreening', kind: 'flag' },
  PinProtected: { prop: 'PinProtected', kind: 'flag' },
  PinTimeout: { prop: 'PinProtectTimeout', kind: 'int' },
  AllowLanOnly: { prop: 'AllowLanOnly', kind: 'flag' },
  SIPID: { prop: 'SIPID', kind: 'text' },
  MS365SignInDisabled: { prop: 'MS365SignInEnabled', kind: 'flag', negate: true },
  MS365CalendarDisabled: { prop: 'MS365CalendarEnabled', kind: 'flag', negate: true },
  MS365ContactsDisabled: { prop: 'MS365ContactsEnabled', kind: 'flag', negate: true },
  MS365TeamsDisabled: { prop: 'MS365TeamsEnabled', kind: 'flag', negate: true },
  GoogleSignInDisabled: { prop: 'GoogleSignInEnabled', kind: 'flag', negate: true },
  // V18 names
  PinProtect: { prop: 'PinProtected', kind: 'flag' },
  BlockRemoteTunnel: { prop: 'BlockTunnel', kind: 'flag' },
  DeliverAudio: { prop: 'PbxDeliversAudio', kind: 'flag' },
  EmailMissedCalls: { prop: 'SendEmailMissedCalls', kind: 'flag' },
  RecordExternalCallsOnly: { prop: 'RecordExternalCallsOnly', kind: 'flag' },
  AllowOwnRecordings: { prop: 'AllowOwnRecordings', kind: 'flag' },
  CanSeeRecordings: { prop: 'MyPhoneShowRecordings', kind: 'flag' },
  CanDeleteRecordings: { prop: 'MyPhoneAllowDeleteRecordings', kind: 'flag' },
  PushExtension: { prop: 'MyPhonePush', kind: 'flag' },
  WebMeetingAcceptReject: { prop: 'WebMeetingApproveParticipants', kind: 'flag' },
  ClickToCallFriendlyName: { prop: 'ClickToCallId', kind: 'text' },
  WebMeetingFriendlyName: { prop: 'WebMeetingFriendlyName', kind: 'text' },
};

/** Option properties to add to `$select` so options can be read back. */
export const OPTION_SELECT = [...new Set(Object.values(OPTION_COLUMNS).map((o) => o.prop))].join(',');

/** Context of {@link fromXapiUser}. */
export interface FromXapiContext {
  /** Group `Id` → name (from `/Groups`). Memberships of unknown groups fall back to `UserGroup.Name`. */
  groupNames: ReadonlyMap<number, string>;
  /** DIDs routed to this user (`Defs/Pbx.GetRoutes`), as 3CX stores them. */
  dids?: readonly string[];
}

/** Empty, whitespace-only and null strings are the same thing in 3CX: "not set". */
export function text(value: unknown): string | null {
  if (typeof value !== 'string') return null;
  const t = value.trim();
  return t === '' ? null : t;
}

/** E-mail as pbxsync compares it: trimmed, lower case, null when empty. */
export function normalizeEmail(value: unknown): string | null {
  return text(value)?.toLowerCase() ?? null;
}

/** MAC as 12 lower-case hex digits: 3CX and phone labels write `00:15:65:AA:BB:CC`, `0015.65aa.bbcc`, ... */
export function normalizeMac(value: unknown): string {
  const t = text(value) ?? '';
  const hex = t.replace(/[\s:.-]/g, '').toLowerCase();
  return /^[0-9a-f]{12}$/.test(hex) ? hex : t.toLowerCase();
}

/**
 * A phone number as pbxsync compares it: formatting (spaces, dashes, dots, brackets, slashes) removed and an
 * international `00` prefix written as `+`. Numbers typed without a country code stay as they are: without a
 * region there is no safe way to add one.
 */
export function normalizePhone(value: unknown): string | null {
  const t = text(value);
  if (t === null) return null;
  const compact = t.replace(/[\s\-.()/]/g, '');
  if (/^00[1-9]\d+$/.test(compact)) return '+' + compact.slice(2);
  return compact;
}

/**
 * A DID as pbxsync compares it (E.164). 3CX trunks commonly store DIDs as the full international number
 * without `+` (that is what the provider sends in the To header); those are read with a `+`. Short numbers
 * (internal or a provider's short form, under 8 digits) are left as they are.
 */
export function normalizeDid(value: unknown): string | null {
  const n = normalizePhone(value);
  if (n === null) return null;
  return /^[1-9]\d{7,14}$/.test(n) ? '+' + n : n;
}

function flagText(value: unknown): string {
  return value === true ? '1' : '0';
}

function parseFlag(value: string): boolean | undefined {
  const v = value.trim().toLowerCase();
  if (['1', 'true', 'yes', 'y', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'n', 'off', ''].includes(v)) return false;
  return undefined;
}

/** The XAPI value of one CSV option cell, or undefined when 3CX could not take it. */
function optionValue(entry: OptionColumn, raw: string): string | number | boolean | undefined {
  const kind = entry.kind;
  const v = raw.trim();
  if (kind === 'flag') {
    const b = parseFlag(v);
    return b === undefined ? undefined : entry.negate ? !b : b;
  }
  if (kind === 'text') return v;
  if (kind === 'int') return /^\d{1,9}$/.test(v) ? Number(v) : undefined;
  // The CSV writes an enumeration as its position (VMEmailOptions 1 = Notification).
  if (/^\d+$/.test(v)) return kind[Number(v)];
  return kind.find((e) => e.toLowerCase() === v.toLowerCase());
}

/** The CSV text of an XAPI option property, as {@link optionsFromXapi} reports it. */
function optionText(entry: OptionColumn, value: unknown): string {
  if (entry.kind === 'flag') return flagText(entry.negate ? value === false : value === true);
  if (entry.kind === 'int') return typeof value === 'number' ? String(value) : (text(value) ?? '');
  return text(value) ?? '';
}

/** The CSV-named options of a 3CX user: every column of {@link OPTION_COLUMNS}, as CSV strings. */
export function optionsFromXapi(user: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [column, entry] of Object.entries(OPTION_COLUMNS)) {
    if (!(entry.prop in user)) continue;
    out[column] = optionText(entry, user[entry.prop]);
  }
  return out;
}

/**
 * CSV-named options → `Pbx.User` properties. Unknown columns and values 3CX would refuse (a flag that is not
 * 0/1, an enum outside its list) are left out with a debug line: they are hints from a spreadsheet, not
 * worth failing a user for.
 */
export function optionsToXapi(options: Record<string, string>, logger?: Logger): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [column, raw] of Object.entries(options)) {
    const entry = OPTION_COLUMNS[column];
    if (!entry) {
      logger?.debug(`3CX option ${column} has no XAPI counterpart; ignored`);
      continue;
    }
    const value = optionValue(entry, raw);
    if (value === undefined) logger?.debug(`3CX option ${column}="${raw}" is not a value 3CX takes for ${entry.prop}; ignored`);
    else out[entry.prop] = value;
  }
  return out;
}

/**
 * Mapped options in the form {@link optionsFromXapi} reads them back: known columns with a value 3CX takes,
 * spelled as 3CX stores it (flags "0"/"1", enumerations by name, text trimmed). Everything else is left out:
 * {@link optionsToXapi} never writes it, so comparing it would plan the same change on every run (DESIGN §6.1).
 */
export function canonicalOptions(options: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [column, raw] of Object.entries(options)) {
    const entry = OPTION_COLUMNS[column];
    if (!entry) continue;
    const value = optionValue(entry, raw);
    if (value === undefined) continue;
    // Back through the reading side, so both sides of the diff are spelled by the same code.
    out[column] = optionText(entry, value);
  }
  return out;
}

/** A phone as pbxsync compares it; absent model/template are omitted rather than set to undefined. */
export function phoneFromXapi(p: XapiPhone): PhoneSpec {
  const spec: PhoneSpec = { mac: normalizeMac(p.MacAddress) };
  const model = text(p.Name);
  const template = text(p.TemplateName);
  if (model) spec.model = model;
  if (template) spec.template = template;
  return spec;
}

function groupName(m: XapiUserGroup, names: ReadonlyMap<number, string>): string | undefined {
  return names.get(m.GroupId) ?? text(m.Name) ?? undefined;
}

/**
 * `Pbx.User` (with `Groups($expand=Rights)` and `Phones` expanded) → PbxUser in canonical form.
 *
 * - department: the group of `PrimaryGroupId` (3CX "Main Group membership"); when 3CX has none, the first
 *   membership; when there is no membership at all, `DEFAULT` (3CX's default group).
 * - role: `Rights.RoleName` of the main-group membership.
 * - extraDepartments: the other memberships' names, sorted.
 */
export function fromXapiUser(user: XapiUser, ctx: FromXapiContext): PbxUser {
  const memberships = (user.Groups ?? []).filter((g) => g && typeof g.GroupId === 'number');
  const main = memberships.find((g) => g.GroupId === user.PrimaryGroupId) ?? memberships[0];
  const department =
    (typeof user.PrimaryGroupId === 'number' ? ctx.groupNames.get(user.PrimaryGroupId) : undefined) ??
    (main ? groupName(main, ctx.groupNames) : undefined) ??
    'DEFAULT';
  const extra = new Set<string>();
  for (const m of memberships) {
    const name = groupName(m, ctx.groupNames);
    if (name && name !== department) extra.add(name);
  }
  const role: RoleName = (main?.Rights?.RoleName ? parseRole(main.Rights.RoleName) : undefined) ?? 'users';
  const dids = [...new Set((ctx.dids ?? []).map(normalizeDid).filter((d): d is string => d !== null))].sort();
  const phones = (user.Phones ?? []).map(phoneFromXapi).sort((a, b) => (a.mac < b.mac ? -1 : a.mac > b.mac ? 1 : 0));
  return {
    id: String(user.Id),
    extension: text(user.Number) ?? '',
    firstName: text(user.FirstName) ?? '',
    lastName: text(user.LastName) ?? '',
    displayName: text(user.DisplayName),
    email: normalizeEmail(user.EmailAddress),
    mobile: normalizePhone(user.Mobile),
    outboundCallerId: normalizePhone(user.OutboundCallerID),
    // 3CX stores "no language of its own" as "" (the user then follows the system language). A filled-in
    // default is deliberately NOT folded to null: a mapping that asks for that very language explicitly
    // would then differ on every run and be written forever.
    language: text(user.Language),
    department,
    extraDepartments: [...extra].sort(),
    role,
    dids,
    // 3CX's defaults when a property is absent: enabled, voicemail on, no 2FA, listed, not recorded.
    vmEnabled: user.VMEnabled !== false,
    vmPin: text(user.VMPIN),
    require2fa: user.Require2FA === true,
    hideInPhonebook: user.HideInPhonebook === true,
    recordCalls: user.RecordCalls === true,
    phones,
    enabled: user.Enabled !== false,
    options: optionsFromXapi(user),
  };
}

/**
 * The scalar part of UserFields → `Pbx.User` properties, only for the fields present in `changes`.
 * Departments, role, phones and DIDs need ids and the current state, see {@link toXapiGroups},
 * {@link toXapiPhones}; they are not handled here. Empty values are sent as `""` rather than null: 3CX's
 * own console sends `""` for cleared text fields.
 */
export function toXapiFields(changes: Partial<UserFields>, logger?: Logger): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const str = (v: string | null | undefined) => v ?? '';
  if (changes.firstName !== undefined) out.FirstName = changes.firstName;
  if (changes.lastName !== undefined) out.LastName = changes.lastName;
  if (changes.displayName !== undefined) out.DisplayName = str(changes.displayName);
  if (changes.email !== undefined) out.EmailAddress = str(normalizeEmail(changes.email));
  if (changes.mobile !== undefined) out.Mobile = str(changes.mobile);
  if (changes.outboundCallerId !== undefined) out.OutboundCallerID = str(changes.outboundCallerId);
  if (changes.language !== undefined) out.Language = str(changes.language);
  if (changes.enabled !== undefined) out.Enabled = changes.enabled;
  if (changes.require2fa !== undefined) out.Require2FA = changes.require2fa;
  if (changes.vmEnabled !== undefined) out.VMEnabled = changes.vmEnabled;
  // A null PIN means "keep or let 3CX generate one": never send an empty PIN.
  if (changes.vmPin) out.VMPIN = changes.vmPin;
  if (changes.hideInPhonebook !== undefined) out.HideInPhonebook = changes.hideInPhonebook;
  if (changes.recordCalls !== undefined) out.RecordCalls = changes.recordCalls;
  if (changes.options) Object.assign(out, optionsToXapi(changes.options, logger));
  return out;
}

/**
 * The full `Groups` list of a user: the main department first, then the others sorted, each with the
 * user's role. 3CX keeps a role per membership; pbxsync has one role per user, so it is written on every
 * membership (otherwise a membership keeps whatever role it had and the user's effective rights drift).
 */
export function toXapiGroups(
  department: string,
  extraDepartments: readonly string[],
  role: RoleName,
  groupId: (name: string) => number,
): XapiUserGroup[] {
  const names = [department, ...[...new Set(extraDepartments)].filter((d) => d !== department).sort()];
  return names.map((name) => ({ GroupId: groupId(name), Rights: { RoleName: role } }));
}

/**
 * The full `Phones` list of a user. `Phones` is replaced as a whole on PATCH, so phones that stay are sent
 * back as 3CX has them (Id, Settings, provisioning secret) with only model/template changed; dropping
 * their Id would make 3CX re-create them and invalidate the provisioning links already on the devices.
 */
export function toXapiPhones(phones: readonly PhoneSpec[], current: readonly XapiPhone[] = []): XapiPhone[] {
  const byMac = new Map(current.map((p) => [normalizeMac(p.MacAddress), p]));
  return [...phones]
    .sort((a, b) => (a.mac < b.mac ? -1 : a.mac > b.mac ? 1 : 0))
    .map((spec) => {
      const mac = normalizeMac(spec.mac);
      const existing = byMac.get(mac);
      const out: XapiPhone = existing ? { ...existing, MacAddress: mac } : { MacAddress: mac };
      if (spec.template !== undefined) out.TemplateName = spec.template;
      if (spec.model !== undefined) out.Name = spec.model;
      return out;
    });
}

/** `user 200 (Amanda Camden)`: how error messages name a 3CX user. */
export function describeUser(extension: string | null | undefined, firstName?: string | null, lastName?: string | null): string {
  const name = [firstName, lastName].filter((s) => s && s.trim()).join(' ');
  return `user ${extension || '?'}${name ? ` (${name})` : ''}`;
}
