import { TerminalError } from '../../errors/index.js';
import { NEW_USER_DEFAULTS, ROLE_ORDER, noItems, shared } from '../../model/index.js';
import type { PhoneSpec, RoleName, UserFieldName, UserFields } from '../../model/index.js';

/**
 * The pure rules of the embedded PBX store: per-field normalisation and validation, the credential rules of
 * the seeds, and the hosted-PBX status tags. No I/O and no store state: uniqueness across users lives in
 * store.ts because it needs the indexes.
 */

/** The department every store has and every user falls back to (3CX: "All extensions are initially assigned to the Default group"). */
export const DEFAULT_DEPARTMENT = 'DEFAULT';

/** Status tags of the hosted-PBX "Create a user" guide (seeds/004). */
export type StatusTag = 'New' | 'Setup Required' | 'Password Required';

/** What the store keeps as a user's credentials. `webPassword`/`vmPin` are null only in hand-made documents. */
export interface StoredCredentials {
  sipAuthId: string;
  sipPassword: string;
  webPassword: string | null;
  vmPin: string | null;
}

/** The facts statusTags looks at. */
export interface StatusInput {
  email: string | null;
  credentials: Pick<StoredCredentials, 'webPassword' | 'vmPin'>;
  /** False while the credentials are the generated ones (the user has not set their own yet). */
  credentialsSetByUser: boolean;
}

/**
 * The hosted-PBX guide's tags, in a fixed order:
 * - `New`: has an e-mail, but no PIN or portal password of their own yet (generated ones do not count);
 * - `Setup Required`: no e-mail address;
 * - `Password Required`: no portal (web) password at all.
 */
export function statusTags(user: StatusInput): StatusTag[] {
  const tags: StatusTag[] = [];
  const hasOwnCredentials = user.credentialsSetByUser && !!user.credentials.vmPin && !!user.credentials.webPassword;
  if (user.email && !hasOwnCredentials) tags.push('New');
  if (!user.email) tags.push('Setup Required');
  if (!user.credentials.webPassword) tags.push('Password Required');
  return tags;
}

/**
 * Why a web-client password breaks the seed rule "at least 10 characters long with no spaces and contain a
 * lowercase letter, an uppercase letter and a digit" (seeds/001), or undefined when it meets it.
 * The message never contains the password.
 */
export function webPasswordProblem(password: string): string | undefined {
  if (password.length < 10) return 'password must be at least 10 characters long';
  if (/\s/.test(password)) return 'password must not contain spaces';
  if (!/[a-z]/.test(password)) return 'password must contain a lowercase letter';
  if (!/[A-Z]/.test(password)) return 'password must contain an uppercase letter';
  if (!/[0-9]/.test(password)) return 'password must contain a digit';
  return undefined;
}

/** Why a voicemail PIN breaks "at least 4 digits, numbers only" (seeds/004), or undefined. Never echoes the PIN. */
export function vmPinProblem(pin: string): string | undefined {
  if (!/^[0-9]+$/.test(pin)) return 'voicemail PIN must be numbers only';
  if (pin.length < 4) return 'voicemail PIN must have at least 4 digits';
  return undefined;
}

/**
 * Extension order: shorter numbers first, then digit by digit, so "99" < "100" < "1000" as an admin
 * reads them (a plain string sort would put "1000" before "99").
 */
export function compareExtensions(a: string, b: string): number {
  if (a.length !== b.length) return a.length - b.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** "Anna Smith" (display name when set, else first + last). */
export function personName(user: Pick<UserFields, 'firstName' | 'lastName' | 'displayName'>): string {
  return user.displayName || `${user.firstName} ${user.lastName}`.trim();
}

/** How a user is named in error messages and conflict holders: `extension 1002 (Bob Stone)`. */
export function describeHolder(user: Pick<UserFields, 'firstName' | 'lastName' | 'displayName'> & { extension: string }): string {
  return `extension ${user.extension} (${personName(user)})`;
}

/** Values a new user gets for fields the input leaves out (see NEW_USER_DEFAULTS). */
export const CREATE_DEFAULTS: Readonly<Omit<UserFields, 'firstName'>> = NEW_USER_DEFAULTS;

type Normaliser<K extends UserFieldName> = (value: unknown, who: string) => UserFields[K];

function refuse(who: string, field: UserFieldName, message: string): never {
  throw new TerminalError(`${who}: ${message}`, { field });
}

function requireString(value: unknown, who: string, field: UserFieldName, label: string): string {
  if (typeof value !== 'string') refuse(who, field, `${label} must be text`);
  return value.trim();
}

function optionalText(field: UserFieldName, label: string): (value: unknown, who: string) => string | null {
  return (value, who) => {
    if (value === null || value === undefined) return null;
    const s = requireString(value, who, field, label);
    return s === '' ? null : s;
  };
}

function flag(field: UserFieldName, label: string): (value: unknown, who: string) => boolean {
  return (value, who) => {
    if (typeof value !== 'boolean') refuse(who, field, `${label} must be true or false`);
    return value;
  };
}

function stringList(value: unknown, who: string, field: UserFieldName, label: string): string[] {
  if (value === null || value === undefined || (Array.isArray(value) && value.length === 0)) return noItems();
  if (!Array.isArray(value)) refuse(who, field, `${label} must be a list`);
  const out = new Set<string>();
  for (const v of value) {
    const s = requireString(v, who, field, label);
    if (s !== '') out.add(s);
  }
  return out.size ? [...out].sort() : noItems();
}

/** Lower-case, 12 hex digits, no separators; accepts `00:15:65:AA:BB:CC`, `0015-65aa-bbcc`, ... */
export function normaliseMac(mac: string): string | undefined {
  const m = mac.replace(/[\s:.-]/g, '').toLowerCase();
  return /^[0-9a-f]{12}$/.test(m) ? m : undefined;
}

// Deliberately light: the mapping normalises e-mail and numbers; the store only refuses what no PBX could use.
const EMAIL = /^[^\s@]+@[^\s@]+$/;
const PHONE_NUMBER = /^\+?[0-9]{2,20}$/;

/** True when the keys are in ascending order, every value is text, and there is no `__proto__` key. */
function sortedStringMap(value: Record<string, unknown>): boolean {
  const keys = Object.keys(value);
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i];
    if (typeof value[k] !== 'string' || k === '__proto__' || (i > 0 && !(keys[i - 1] < k))) return false;
  }
  return true;
}

const NORMALISERS: { [K in UserFieldName]: Normaliser<K> } = {
  firstName: (value, who) => {
    const s = value === null || value === undefined ? '' : requireString(value, who, 'firstName', 'first name');
    if (s === '') refuse(who, 'firstName', 'first name is required');
    return s;
  },
  lastName: (value, who) => (value === null || value === undefined ? '' : requireString(value, who, 'lastName', 'last name')),
  displayName: optionalText('displayName', 'display name'),
  email: (value, who) => {
    if (value === null || value === undefined) return null;
    const s = requireString(value, who, 'email', 'e-mail').toLowerCase();
    if (s === '') return null;
    if (!EMAIL.test(s)) refuse(who, 'email', `e-mail "${s}" is not an e-mail address`);
    return s;
  },
  mobile: optionalText('mobile', 'mobile number'),
  outboundCallerId: optionalText('outboundCallerId', 'outbound caller ID'),
  language: optionalText('language', 'language'),
  department: (value, who) => {
    const s = value === null || value === undefined ? '' : requireString(value, who, 'department', 'department');
    if (s === '') refuse(who, 'department', 'department is required');
    return s;
  },
  extraDepartments: (value, who) => stringList(value, who, 'extraDepartments', 'extra departments'),
  role: (value, who) => {
    if (typeof value !== 'string' || !(ROLE_ORDER as readonly string[]).includes(value)) {
      refuse(who, 'role', `role "${String(value)}" is not one of ${ROLE_ORDER.join(', ')}`);
    }
    return value as RoleName;
  },
  dids: (value, who) => {
    const listed = stringList(value, who, 'dids', 'DIDs');
    if (listed.length === 0) return listed;
    const dids = listed.map((d) => d.replace(/[\s()-]/g, ''));
    for (const d of dids) if (!PHONE_NUMBER.test(d)) refuse(who, 'dids', `DID "${d}" is not a phone number`);
    return [...new Set(dids)].sort();
  },
  vmEnabled: flag('vmEnabled', 'voicemail enabled'),
  vmPin: (value, who) => {
    if (value === null || value === undefined) return null;
    const s = requireString(value, who, 'vmPin', 'voicemail PIN');
    const problem = vmPinProblem(s);
    if (problem) refuse(who, 'vmPin', problem);
    return s;
  },
  require2fa: flag('require2fa', '2FA'),
  hideInPhonebook: flag('hideInPhonebook', 'hide in phonebook'),
  recordCalls: flag('recordCalls', 'record calls'),
  phones: (value, who) => {
    if (value === null || value === undefined || (Array.isArray(value) && value.length === 0)) return noItems();
    if (!Array.isArray(value)) refuse(who, 'phones', 'phones must be a list');
    const seen = new Set<string>();
    const phones: PhoneSpec[] = [];
    for (const p of value as unknown[]) {
      const raw = (p as { mac?: unknown } | null)?.mac;
      const mac = typeof raw === 'string' ? normaliseMac(raw) : undefined;
      if (!mac) refuse(who, 'phones', `MAC "${String(raw)}" must be 12 hex digits`);
      if (seen.has(mac)) refuse(who, 'phones', `MAC ${mac} is listed twice`);
      seen.add(mac);
      const phone: PhoneSpec = { mac };
      const { model, template } = p as { model?: unknown; template?: unknown };
      if (typeof model === 'string' && model.trim()) phone.model = model.trim();
      if (typeof template === 'string' && template.trim()) phone.template = template.trim();
      phones.push(phone);
    }
    return phones.sort((a, b) => (a.mac < b.mac ? -1 : a.mac > b.mac ? 1 : 0));
  },
  enabled: flag('enabled', 'enabled'),
  options: (value, who) => {
    if (value === null || value === undefined) return shared({});
    if (typeof value !== 'object' || Array.isArray(value)) refuse(who, 'options', 'options must be a map of strings');
    // The usual input (a mapping's options) already has sorted keys and text values: a spread copies it
    // several times faster than the general path below, into the same fast-properties object.
    // Stored options are always frozen, so a frozen map (the mapping's) is kept as it is and listings hand
    // it out without a copy: nobody can change it under the store.
    if (sortedStringMap(value as Record<string, unknown>)) {
      return Object.isFrozen(value) ? (value as Record<string, string>) : shared(Object.assign({}, value as Record<string, string>));
    }
    const entries: Array<[string, string]> = [];
    // Sorted keys keep the JSON document (and equality) independent of input order.
    for (const k of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[k];
      if (typeof v !== 'string') refuse(who, 'options', `option ${k} must be text`);
      // A `__proto__` key would set the prototype, not add an option (as `out[k] = v` did).
      if (k !== '__proto__') entries.push([k, v]);
    }
    // WARNING: fromEntries, not `out[k] = v`: V8 keeps an object that got more than a dozen properties by
    // keyed stores as a hash table (~1.6 KB for 27 options instead of ~0.3 KB), for every stored user.
    return shared(Object.fromEntries(entries));
  },
};

/** The names of all managed fields. */
export const USER_FIELD_NAMES = Object.keys(NORMALISERS) as UserFieldName[];

/** True when `name` is a managed field. */
export function isUserField(name: string): name is UserFieldName {
  return Object.prototype.hasOwnProperty.call(NORMALISERS, name);
}

/**
 * Normalises and validates one field value; throws TerminalError naming `who` and the field. Copies arrays
 * and objects the caller could change (a frozen options map and the shared empty list need no copy), so the
 * store never shares anything mutable with the caller.
 */
export function normaliseField<K extends UserFieldName>(field: K, value: unknown, who: string): UserFields[K] {
  return (NORMALISERS[field] as Normaliser<K>)(value, who);
}

/** Every field of a new user, normalised, with CREATE_DEFAULTS for what the input leaves out. */
export function normaliseNewUser(input: Partial<UserFields>, who: string): UserFields {
  const pick = <K extends UserFieldName>(field: K): UserFields[K] => {
    const given = input[field];
    return normaliseField(field, given === undefined ? (CREATE_DEFAULTS as Partial<UserFields>)[field] : given, who);
  };
  // Spelled out (the type checker holds it to every field): an object filled by 19 keyed stores would be a
  // hash table in V8, built and thrown away for each of 100,000 created users.
  const fields: UserFields = {
    firstName: pick('firstName'),
    lastName: pick('lastName'),
    displayName: pick('displayName'),
    email: pick('email'),
    mobile: pick('mobile'),
    outboundCallerId: pick('outboundCallerId'),
    language: pick('language'),
    department: pick('department'),
    extraDepartments: pick('extraDepartments'),
    role: pick('role'),
    dids: pick('dids'),
    vmEnabled: pick('vmEnabled'),
    vmPin: pick('vmPin'),
    require2fa: pick('require2fa'),
    hideInPhonebook: pick('hideInPhonebook'),
    recordCalls: pick('recordCalls'),
    phones: pick('phones'),
    enabled: pick('enabled'),
    options: pick('options'),
  };
  fields.extraDepartments = withoutMain(fields.extraDepartments, fields.department);
  return fields;
}

/** Extra departments never repeat the main one (the PbxUser contract). */
export function withoutMain(extra: string[], main: string): string[] {
  return extra.includes(main) ? extra.filter((d) => d !== main) : extra;
}

/** Equality of two normalised field values (arrays and option maps compared by content). */
export function fieldEquals(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!fieldEquals(a[i], b[i])) return false;
    return true;
  }
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
    const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
    if (ka.length !== kb.length) return false;
    for (const k of ka) if (!fieldEquals((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
    return true;
  }
  return false;
}

/** Why a department name cannot be used, or undefined. */
export function departmentNameProblem(name: unknown): string | undefined {
  if (typeof name !== 'string' || name.trim() === '') return 'a department name must be non-empty text';
  if (name !== name.trim()) return `department "${name}" has leading or trailing spaces`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f]/.test(name)) return `department "${name.replace(/[\u0000-\u001f]/g, '?')}" contains control characters`;
  return undefined;
}
