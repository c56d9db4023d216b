import type { RoleName } from './roles.js';

/** A phone attached to a user. `mac` is 12 lower-case hex digits without separators. */
export interface PhoneSpec {
  mac: string;
  /** Vendor model, e.g. "Yealink T46U". */
  model?: string;
  /** Provisioning template name, e.g. "yealinkT4x.ph.xml". */
  template?: string;
}

/**
 * The fields of a PBX user that pbxsync can manage. Everything a mapping can set lives here, in the
 * normalised form both targets compare on (sorted lists, E.164 numbers, lower-case e-mail and MAC).
 */
export interface UserFields {
  firstName: string;
  lastName: string;
  displayName: string | null;
  /** Lower-cased; unique in the PBX when present. */
  email: string | null;
  /** E.164. */
  mobile: string | null;
  /** E.164 or an internal caller ID string as the PBX accepts it. */
  outboundCallerId: string | null;
  language: string | null;
  /** Main department (3CX "Main Group membership"). */
  department: string;
  /** Further departments, sorted, never containing `department`. */
  extraDepartments: string[];
  role: RoleName;
  /** E.164, sorted, each on one user only. */
  dids: string[];
  vmEnabled: boolean;
  /** Secret. Digits only, at least 4. */
  vmPin: string | null;
  require2fa: boolean;
  hideInPhonebook: boolean;
  recordCalls: boolean;
  /** Sorted by mac. */
  phones: PhoneSpec[];
  enabled: boolean;
  /**
   * Further PBX options carried through as-is, keyed by their 3CX CSV column name (e.g. `Ringtone`,
   * `VMEmailOptions`, `AllowLanOnly`). Values are strings as in the CSV ("0"/"1" for flags).
   */
  options: Record<string, string>;
}

/** Names of UserFields, for per-field diffs. */
export type UserFieldName = keyof UserFields;

/** Fields whose values are secrets: never logged, never written to plans or reports. */
export const SECRET_FIELDS: ReadonlySet<UserFieldName> = new Set<UserFieldName>(['vmPin']);

/** A user as the target holds it. */
export interface PbxUser extends UserFields {
  /** The target's own id (embedded: a UUID; 3CX: the numeric `Id` as a string). */
  id: string;
  /** Digits; immutable once created. */
  extension: string;
}

/** Where a managed user came from: the binding between a source record and a PBX user. */
export interface IdentityKey {
  source: string;
  anchor: string;
}

/** `source/anchor`, the string form of an IdentityKey used as a map key. */
export function keyString(key: IdentityKey): string {
  return `${key.source}/${key.anchor}`;
}

/**
 * What a new PBX user gets for every field a mapping leaves out: the PBX's own defaults (3CX: voicemail on,
 * role `users`, the DEFAULT department), with 2FA off so a first login is not blocked (seeds/002).
 * Shared by the apply step, the embedded store and the test builders, so all agree on what "not managed"
 * creates. A fresh object each call: its lists are the caller's to change.
 */
export function newUserFields(): UserFields {
  return {
    firstName: '',
    lastName: '',
    displayName: null,
    email: null,
    mobile: null,
    outboundCallerId: null,
    language: null,
    department: 'DEFAULT',
    extraDepartments: [],
    role: 'users',
    dids: [],
    vmEnabled: true,
    vmPin: null,
    require2fa: false,
    hideInPhonebook: false,
    recordCalls: false,
    phones: [],
    enabled: true,
    options: {},
  };
}

/** newUserFields() frozen all the way down, for lookups of a default value. */
export const NEW_USER_DEFAULTS: Readonly<UserFields> = (() => {
  const d = newUserFields();
  for (const v of Object.values(d)) if (v && typeof v === 'object') Object.freeze(v);
  return Object.freeze(d);
})();

const EMPTY: readonly never[] = Object.freeze([]);

/**
 * One shared, frozen empty list. A 100,000-user import held ~20 MB of distinct empty `dids`, `phones` and
 * `extraDepartments` arrays across the mapped users, the plan and the store; nothing changes these lists
 * in place (every change assigns a new list), and a frozen one makes any attempt fail loudly.
 */
export function noItems<T>(): T[] {
  return EMPTY as unknown as T[];
}

/**
 * Freezes a value object meant to be shared rather than copied (a user's options: the mapping builds it,
 * the plan and the store keep the same object). Frozen, neither holder can change it under the other.
 *
 * WARNING: never pass an object made by a spread (`{ ...template }`): V8 (Node 20) gives each such copy a
 * hidden class of its own once frozen, ~600 bytes of shape per object, 60 MB over a 100,000-user import.
 * `Object.assign({}, template)` copies share one frozen shape.
 */
export function shared<T extends object>(value: T): Readonly<T> {
  return Object.freeze(value);
}
