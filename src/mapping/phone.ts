import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js';

/**
 * Normalises a phone number to E.164 (`+12015550123`) reading national numbers in `region`. Returns
 * undefined when the text is no possible phone number. An extension part (`x 23`) is dropped: a DID or
 * mobile has none.
 *
 * WARNING: libphonenumber-js costs several microseconds per call (it rebuilds its regular expressions), so
 * results are memoised; CSV files and directories repeat numbers (shared DIDs, switchboard numbers).
 */
export function toE164(input: string, region: string): string | undefined {
  const key = `${region}|${input}`;
  const hit = cache.get(key);
  if (hit !== undefined) return hit === null ? undefined : hit;
  const parsed = parsePhoneNumberFromString(input, { defaultCountry: region as CountryCode, extract: false });
  const result = parsed !== undefined && parsed.isValid() ? (parsed.number as string) : undefined;
  if (cache.size >= CACHE_LIMIT) cache.clear();
  cache.set(key, result ?? null);
  return result;
}

const CACHE_LIMIT = 50_000;
const cache = new Map<string, string | null>();

/**
 * Splits a cell that may hold several numbers. `;` and `,` always separate; spaces separate only when the
 * pieces are complete numbers on their own, since "+1 201 555 0123" is one number written with spaces.
 * Returns the E.164 numbers and the pieces that could not be read.
 */
export function splitNumbers(cell: string, region: string): { numbers: string[]; invalid: string[] } {
  const numbers: string[] = [];
  const invalid: string[] = [];
  for (const raw of cell.split(/[;,]/)) {
    const piece = raw.trim();
    if (piece === '') continue;
    const whole = toE164(piece, region);
    if (whole !== undefined) {
      numbers.push(whole);
      continue;
    }
    const words = piece.split(/\s+/);
    const each = words.length > 1 ? words.map((w) => toE164(w, region)) : [];
    if (each.length > 0 && each.every((n) => n !== undefined)) numbers.push(...(each as string[]));
    else invalid.push(piece);
  }
  return { numbers, invalid };
}

/**
 * Normalises a MAC address to 12 lower-case hex digits: accepts `00:15:65:AA:BB:CC`, `00-15-65-aa-bb-cc`,
 * `0015.65aa.bbcc` and `001565AABBCC`. Undefined when it is none of these.
 */
export function normalizeMac(input: string): string | undefined {
  const t = input.trim();
  if (!/^(?:[0-9a-f]{2}(?:[:-]?[0-9a-f]{2}){5}|[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4})$/i.test(t)) return undefined;
  const hex = t.replace(/[:.-]/g, '').toLowerCase();
  return hex.length === 12 ? hex : undefined;
}
