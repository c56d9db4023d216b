import winston from 'winston';

/** Logger type used across pbxsync (winston). Create children with `logger.child({ runId })`. */
export type Logger = winston.Logger;

/**
 * Registered secrets, bucketed by a hash of their first four characters so that masking a string costs one
 * map lookup per character, not one scan per secret: the embedded store registers several credentials per
 * user, and a 100,000-user install must not make every log line slow. A bucket is the secret itself while it
 * is alone (nearly always), else its secrets longest first; collisions of the hash are harmless because a
 * match is confirmed with startsWith.
 *
 * WARNING: keys are small integers, not the four-character prefix strings: a Map keyed by 300,000 fresh
 * substrings (plus a one-element array each) cost ~5x as much to build and hold during a 100,000-user import.
 */
const byPrefix = new Map<number, string | string[]>();
let registered = 0;

/** Hash of text[i..i+4) (the caller ensures four characters exist). */
function prefixHash(text: string, i: number): number {
  let h = 0x811c9dc5;
  h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ text.charCodeAt(i + 1), 0x01000193);
  h = Math.imul(h ^ text.charCodeAt(i + 2), 0x01000193);
  h = Math.imul(h ^ text.charCodeAt(i + 3), 0x01000193);
  // 30 bits: a small integer (Smi) key on every platform.
  return h & 0x3fffffff;
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
  const bucket = byPrefix.get(h);
  if (bucket === undefined) {
    byPrefix.set(h, value);
  } else if (typeof bucket === 'string') {
    if (bucket === value) return;
    byPrefix.set(h, bucket.length >= value.length ? [bucket, value] : [value, bucket]);
  } else if (!bucket.includes(value)) {
    bucket.push(value);
    bucket.sort((a, b) => b.length - a.length);
  } else {
    return;
  }
  registered++;
}

/** Replaces every registered secret in a string with `[redacted]` (the longest match wins). */
export function redact(text: string): string {
  if (registered === 0 || text.length < 4) return text;
  let out = '';
  let last = 0;
  for (let i = 0; i + 4 <= text.length; ) {
    const bucket = byPrefix.get(prefixHash(text, i));
    const hit =
      bucket === undefined
        ? undefined
        : typeof bucket === 'string'
          ? text.startsWith(bucket, i)
            ? bucket
            : undefined
          : bucket.find((s) => text.startsWith(s, i));
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
