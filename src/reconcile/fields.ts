import { noItems, type PhoneSpec, type UserFieldName, type UserFields } from '../model/index.js';

/** Every user field in a fixed order: plan ops list changed fields in this order, so plans are deterministic. */
export const FIELD_ORDER: readonly UserFieldName[] = [
  'firstName',
  'lastName',
  'displayName',
  'email',
  'mobile',
  'outboundCallerId',
  'language',
  'department',
  'extraDepartments',
  'role',
  'dids',
  'vmEnabled',
  'vmPin',
  'require2fa',
  'hideInPhonebook',
  'recordCalls',
  'phones',
  'enabled',
  'options',
];

/** Field names as admins read them in reasons ("e-mail and first name changed ..."). */
export const FIELD_LABELS: Readonly<Record<UserFieldName, string>> = {
  firstName: 'first name',
  lastName: 'last name',
  displayName: 'display name',
  email: 'e-mail',
  mobile: 'mobile',
  outboundCallerId: 'outbound caller ID',
  language: 'language',
  department: 'department',
  extraDepartments: 'further departments',
  role: 'role',
  dids: 'DIDs',
  vmEnabled: 'voicemail',
  vmPin: 'voicemail PIN',
  require2fa: '2FA',
  hideInPhonebook: 'phonebook visibility',
  recordCalls: 'call recording',
  phones: 'phones',
  enabled: 'enabled',
  options: 'options',
};

const NULLABLE_STRINGS = new Set<UserFieldName>(['displayName', 'email', 'mobile', 'outboundCallerId', 'language']);

function normalisePhone(p: PhoneSpec): PhoneSpec {
  const out: PhoneSpec = { mac: normaliseMac(p.mac) };
  if (p.model !== undefined && p.model !== '') out.model = p.model.trim();
  if (p.template !== undefined && p.template !== '') out.template = p.template.trim();
  return out;
}

/** A MAC as the model stores it: 12 lower-case hex digits, separators dropped. */
export function normaliseMac(mac: string): string {
  return mac.toLowerCase().replace(/[^0-9a-f]/g, '');
}

/**
 * The comparable form of one field value. Sources and targets both claim to hand over normalised values,
 * but an un-normalised default on either side would cause an update on every run (the CreateOrUpdate trap),
 * so the planner normalises once more before comparing: trimmed strings, '' as null, lower-case e-mail,
 * sorted lists, sorted phones, sorted option keys.
 */
export function normaliseField(name: UserFieldName, value: unknown): unknown {
  if (value === undefined) return undefined;
  if (name === 'extraDepartments' || name === 'dids') {
    if (!Array.isArray(value) || value.length === 0) return noItems();
    const list = value.map((v) => String(v).trim()).filter((v) => v !== '');
    return list.length ? [...new Set(list)].sort() : noItems();
  }
  if (name === 'phones') {
    if (!Array.isArray(value) || value.length === 0) return noItems();
    const list = (value as PhoneSpec[]).map(normalisePhone);
    return list.sort((a, b) => (a.mac < b.mac ? -1 : a.mac > b.mac ? 1 : 0));
  }
  if (name === 'options') {
    const rec = (value ?? {}) as Record<string, unknown>;
    // Already normalised (what every store and the planner itself hand back): no copy. Nobody changes an
    // options record in place, so sharing it is safe, and a no-op sync of 100,000 users otherwise copied
    // every user's options just to compare them.
    if (isNormalisedOptions(rec)) return rec;
    const entries: Array<[string, string]> = [];
    for (const k of Object.keys(rec).sort()) if (k !== '__proto__') entries.push([k, String(rec[k])]);
    // WARNING: fromEntries, not `out[k] = v`: many keyed stores make V8 store the object as a hash table,
    // ~5x the memory; the planner keeps this copy for every user it creates or updates.
    return Object.fromEntries(entries);
  }
  if (typeof value === 'string') {
    const t = value.trim();
    if (NULLABLE_STRINGS.has(name) && t === '') return null;
    return name === 'email' ? t.toLowerCase() : t;
  }
  return value;
}

/** True for a plain record with sorted keys, string values and no `__proto__` key. */
function isNormalisedOptions(rec: Record<string, unknown>): boolean {
  if (Object.getPrototypeOf(rec) !== Object.prototype) return false;
  let prev: string | undefined;
  for (const k in rec) {
    if (!Object.prototype.hasOwnProperty.call(rec, k)) return false;
    if ((prev !== undefined && !(prev < k)) || k === '__proto__' || typeof rec[k] !== 'string') return false;
    prev = k;
  }
  return true;
}

/** JSON with object keys sorted and undefined dropped: equal values give equal text. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value instanceof Date) return value.toISOString();
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[k];
      if (v !== undefined) out[k] = sortKeys(v);
    }
    return out;
  }
  return value;
}

/** True when two field values are equal after normalisation. */
export function sameField(name: UserFieldName, a: unknown, b: unknown): boolean {
  const x = normaliseField(name, a);
  const y = normaliseField(name, b);
  // Most fields are scalars or string lists: compare those directly (this runs for every managed field
  // of every user on every sync).
  if (x === y) return true;
  if (x === null || y === null || typeof x !== 'object' || typeof y !== 'object') return false;
  if (Array.isArray(x) && Array.isArray(y) && x.every((v) => typeof v !== 'object')) {
    return x.length === y.length && x.every((v, i) => v === y[i]);
  }
  return canonicalJson(x) === canonicalJson(y);
}

/** A person's name for humans: display name, else first and last name. */
export function userName(u: Partial<UserFields> | undefined): string | undefined {
  if (!u) return undefined;
  if (u.displayName) return u.displayName;
  const n = [u.firstName, u.lastName].filter((x) => x).join(' ');
  return n || undefined;
}

/** "a", "a and b", "a, b and c". */
export function joinHuman(items: readonly string[]): string {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}
