import { Metadata, parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js';

/**
 * Normalises a phone number to E.164 (`+12015550123`) reading national numbers in `region`. Returns
 * undefined when the text is no valid phone number. An extension part (`x 23`) is dropped: a DID or mobile
 * has none.
 *
 * WARNING: libphonenumber-js costs about 8 µs per call (it rebuilds its regular expressions on every
 * match), which alone would take most of the time budget of a 100,000-row import. Numbers already written
 * internationally (`+1 201 555 0123`, the common case in exports) are therefore first checked by
 * `fastE164` below, which only ever answers "valid, and this is its E.164"; everything else goes to the
 * library. Results are memoised too: directories repeat numbers (switchboard caller IDs, shared DIDs).
 */
export function toE164(input: string, region: string): string | undefined {
  const fast = fastE164(input);
  if (fast !== undefined) return fast;
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

/** The runtime surface of libphonenumber-js's Metadata used here (its .d.ts declares less than it has). */
interface MetadataRuntime {
  getCountryCodesForCallingCode(callingCode: string): string[] | undefined;
  selectNumberingPlan(country: string): void;
  numberingPlan: {
    nationalNumberPattern(): string;
    nationalPrefixForParsing(): string | undefined;
    leadingDigits(): string | undefined;
    hasTypes(): boolean;
    type(name: string): { pattern(): string; possibleLengths(): number[] | undefined } | undefined;
  };
}

/** libphonenumber's number types, fixed line first, as its getNumberType tries them. */
const TYPES = ['FIXED_LINE', 'MOBILE', 'PREMIUM_RATE', 'TOLL_FREE', 'SHARED_COST', 'VOIP', 'PERSONAL_NUMBER', 'PAGER', 'UAN', 'VOICEMAIL'];

/** The compiled validity rules of the numbering plan libphonenumber would pick first for a calling code. */
interface Plan {
  national: RegExp;
  /** Numbers starting with the national prefix may be rewritten by the library: not for the fast path. */
  prefix?: RegExp;
  /** When the plan has types, a valid number must also match one of them. */
  types?: Array<{ pattern: RegExp; lengths?: number[] }>;
}

const plans = new Map<string, Plan | null>();

/**
 * The plan for a calling code, or null when the library's own choice of country could differ from the
 * first one (several countries and the first selected by leading digits) or there is no country (non-
 * geographic codes): those numbers take the library path.
 */
function planFor(callingCode: string): Plan | null {
  const known = plans.get(callingCode);
  if (known !== undefined) return known;
  const metadata = new Metadata() as unknown as MetadataRuntime;
  const countries = metadata.getCountryCodesForCallingCode(callingCode);
  let plan: Plan | null = null;
  if (countries && countries.length > 0) {
    metadata.selectNumberingPlan(countries[0]);
    const np = metadata.numberingPlan;
    if (countries.length === 1 || !np.leadingDigits()) {
      const prefix = np.nationalPrefixForParsing();
      plan = {
        national: new RegExp(`^(?:${np.nationalNumberPattern()})$`),
        prefix: prefix ? new RegExp(`^(?:${prefix})`) : undefined,
        types: np.hasTypes()
          ? TYPES.map((t) => np.type(t))
              .filter((t): t is NonNullable<typeof t> => t !== undefined && t.pattern() !== '')
              .map((t) => ({ pattern: new RegExp(`^(?:${t.pattern()})$`), lengths: t.possibleLengths() }))
          : undefined,
      };
    }
  }
  plans.set(callingCode, plan);
  return plan;
}

/**
 * E.164 of an internationally written number (`+` then digits, with spaces, dots, dashes or parentheses)
 * when it is valid in the numbering plan the library would choose, else undefined ("ask the library").
 * Mirrors libphonenumber-js: the country is the only one of the calling code, or the first one when it
 * matches a number type; validity is its national pattern plus, when the plan has types, one type.
 */
export function fastE164(input: string): string | undefined {
  if (input.charCodeAt(0) !== 43 /* + */) return undefined;
  const digits = input.slice(1).replace(/[\s().-]/g, '');
  if (!/^[1-9]\d{6,16}$/.test(digits)) return undefined;
  for (let length = 1; length <= 3; length++) {
    const plan = planFor(digits.slice(0, length));
    if (plan === null) continue;
    const national = digits.slice(length);
    if (plan.prefix?.test(national)) return undefined;
    if (!plan.national.test(national)) return undefined;
    if (plan.types && !plan.types.some((t) => (!t.lengths || t.lengths.includes(national.length)) && t.pattern.test(national))) {
      return undefined;
    }
    return `+${digits}`;
  }
  return undefined;
}

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
