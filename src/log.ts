import winston from 'winston';

/** Logger type used across pbxsync (winston). Create children with `logger.child({ runId })`. */
export type Logger = winston.Logger;

/**
 * Registered secrets in an open-addressing hash table keyed by a hash of their first four characters, so that
 * masking a string costs one probe sequence per character, not one scan per secret: the embedded store
 * registers several credentials per user, and a 100,000-user install must not make every log line slow.
 * Secrets sharing a prefix hash sit in neighbouring slots; a match is confirmed with startsWith.
 *
 * WARNING: typed arrays, not a Map: a Map of 200,000 entries (a 100,000-user import) reallocated its table
 * each time it doubled, ~55 MB of garbage in the middle of the import, and held ~14 MB itself. Here the
 * table is two Int32Arrays outside the JS heap and the secrets one array of the strings the store holds
 * anyway.
 */
const secrets: string[] = [];
/** 1 + index into `secrets`, 0 for an empty slot. Load factor at most 1/2. */
let slots = new Int32Array(1 << 10);
/** The prefix hash of each slot's secret. */
let slotHashes = new Int32Array(1 << 10);

/** Hash of text[i..i+4) (the caller ensures four characters exist). */
function prefixHash(text: string, i: number): number {
  let h = 0x811c9dc5;
  h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ text.charCodeAt(i + 1), 0x01000193);
  h = Math.imul(h ^ text.charCodeAt(i + 2), 0x01000193);
  h = Math.imul(h ^ text.charCodeAt(i + 3), 0x01000193);
  // Mixed so that the low bits (the slot) depend on every character.
  return (h ^ (h >>> 15)) | 0;
}

/** Puts secret number `index` (hash `h`) into the first free slot of its probe sequence. */
function place(index: number, h: number): void {
  const mask = slots.length - 1;
  let j = h & mask;
  while (slots[j] !== 0) j = (j + 1) & mask;
  slots[j] = index + 1;
  slotHashes[j] = h;
}

/**
 * Registers a secret value so that it is masked in every log line, whatever field or message it ends up
 * in. The config loader registers each secret it resolves; targets register generated credentials.
 * Values shorter than 4 characters are not registered (they would mask ordinary text), nor are short
 * all-digit values such as voicemail PINs: they would mask digits inside phone numbers and extensions,
 * and PINs only travel in fields whose names the log format masks anyway (see SECRET_KEYS).
 */
export function registerSecret(value: string | undefined | null): void {
  if (!value || value.length < 4 || (value.length <= 8 && /^\d+$/.test(value))) return;
  const h = prefixHash(value, 0);
  const mask = slots.length - 1;
  for (let j = h & mask; slots[j] !== 0; j = (j + 1) & mask) {
    if (slotHashes[j] === h && secrets[slots[j] - 1] === value) return;
  }
  secrets.push(value);
  if (secrets.length * 2 > slots.length) {
    slots = new Int32Array(slots.length * 2);
    slotHashes = new Int32Array(slots.length);
    for (let i = 0; i < secrets.length; i++) place(i, prefixHash(secrets[i], 0));
  } else {
    place(secrets.length - 1, h);
  }
}

/** The longest registered secret that starts at text[i], if any. */
function secretAt(text: string, i: number): string | undefined {
  const h = prefixHash(text, i);
  const mask = slots.length - 1;
  let best: string | undefined;
  for (let j = h & mask; slots[j] !== 0; j = (j + 1) & mask) {
    if (slotHashes[j] !== h) continue;
    const s = secrets[slots[j] - 1];
    if ((best === undefined || s.length > best.length) && text.startsWith(s, i)) best = s;
  }
  return best;
}

/** Replaces every registered secret in a string with `[redacted]` (the longest match wins). */
export function redact(text: string): string {
  if (secrets.length === 0 || text.length < 4) return text;
  let out = '';
  let last = 0;
  for (let i = 0; i + 4 <= text.length; ) {
    const hit = secretAt(text, i);
    if (hit) {
      out += text.slice(last, i) + '[redacted]';
      i += hit.length;
      last = i;
    } else {
      i++;
    }
  }
  return last === 0 ? text : out + text.slice(last);
}

const SECRET_KEYS = /(password|secret|token|pin|authorization|apikey|api_key|credential)/i;

function scrub(value: unknown, depth = 0): unknown {
  if (depth > 6) return value;
  if (typeof value === 'string') return redact(value);
  if (Array.isArray(value)) return value.map((v) => scrub(v, depth + 1));
  if (value && typeof value === 'object' && !(value instanceof Error)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      out[k] = SECRET_KEYS.test(k) && (typeof v === 'string' || typeof v === 'number') ? '[redacted]' : scrub(v, depth + 1);
    }
    return out;
  }
  return value;
}

const redactFormat = winston.format((info) => {
  for (const key of Object.keys(info)) {
    const v = (info as Record<string, unknown>)[key];
    (info as Record<string, unknown>)[key] =
      SECRET_KEYS.test(key) && (typeof v === 'string' || typeof v === 'number') ? '[redacted]' : scrub(v);
  }
  if (typeof info.message === 'string') info.message = redact(info.message);
  return info;
});

/** Options of createLogger. */
export interface LoggerOptions {
  level?: string;
  /** Also write JSON lines to this file. */
  file?: string;
  /** Where console output goes; default stderr so stdout stays clean for `--json`. */
  silent?: boolean;
}

/** A JSON logger (one object per line on stderr, optionally a file) with secret redaction. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const transports: winston.transport[] = [
    new winston.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly'], silent: options.silent }),
  ];
  if (options.file) transports.push(new winston.transports.File({ filename: options.file }));
  return winston.createLogger({
    level: options.level ?? process.env.PBXSYNC_LOG_LEVEL ?? 'info',
    format: winston.format.combine(winston.format.errors({ stack: false }), redactFormat(), winston.format.timestamp(), winston.format.json()),
    transports,
  });
}

/** A logger that drops everything (tests, library use). */
export function silentLogger(): Logger {
  return winston.createLogger({ silent: true, transports: [new winston.transports.Console({ silent: true })] });
}
