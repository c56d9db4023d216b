import type { Identity } from '../model/index.js';

/**
 * Per-identity evaluation state shared by the compiled rules. Built once per `map()` call; everything in it
 * is plain data so the rules stay cheap (100,000 CSV rows must map in well under a second).
 */
export interface Subject {
  identity: Identity;
  /** Results of the mapping's JSONata expressions, by expression index (see expressions.ts). */
  exprValues: readonly unknown[];
  /** Lower-cased attribute name → actual name, built lazily on the first case-insensitive lookup. */
  lowerNames?: Map<string, string>;
}

/**
 * Reads an attribute: an exact property read first (the common case: the CSV reader canonicalises header
 * names), then a case-insensitive match (directories disagree on `mobile` vs `Mobile`).
 */
export function attribute(rec: Subject, name: string): unknown {
  const attrs = rec.identity.attributes;
  const direct = attrs[name];
  if (direct !== undefined) return direct;
  if (rec.lowerNames === undefined) {
    rec.lowerNames = new Map();
    for (const key of Object.keys(attrs)) {
      const lower = key.toLowerCase();
      if (!rec.lowerNames.has(lower)) rec.lowerNames.set(lower, key);
    }
  }
  const actual = rec.lowerNames.get(name.toLowerCase());
  return actual === undefined ? undefined : attrs[actual];
}

/**
 * The text of a raw value, trimmed: the first non-empty element of an array (LDAP multi-valued attributes),
 * numbers and booleans as written. Empty, null and undefined give ''.
 */
export function text(raw: unknown): string {
  if (typeof raw === 'string') return raw.trim();
  if (raw === undefined || raw === null) return '';
  if (typeof raw === 'number' || typeof raw === 'boolean' || typeof raw === 'bigint') return String(raw);
  if (Array.isArray(raw)) {
    for (const item of raw) {
      const t = text(item);
      if (t !== '') return t;
    }
    return '';
  }
  return '';
}

/** Every non-empty text of a raw value (arrays flattened). */
export function texts(raw: unknown, out: string[] = []): string[] {
  if (Array.isArray(raw)) for (const item of raw) texts(item, out);
  else {
    const t = text(raw);
    if (t !== '') out.push(t);
  }
  return out;
}

const TRUE = new Set(['1', 'true', 'yes', 'y', 'on', '-1']);
const FALSE = new Set(['0', 'false', 'no', 'n', 'off', '']);

/**
 * Reads a yes/no value as CSV files and directories write it ("1"/"0", "true", "yes", booleans). Returns
 * undefined for text that is neither.
 */
export function parseFlag(raw: unknown): boolean | undefined {
  if (typeof raw === 'boolean') return raw;
  const t = text(raw).toLowerCase();
  if (TRUE.has(t)) return true;
  if (FALSE.has(t)) return false;
  return undefined;
}
