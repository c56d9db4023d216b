import crypto from 'node:crypto';

/**
 * Credential generation for new users. Everything comes from the CSPRNG (crypto.randomBytes / randomInt),
 * never Math.random: these values log phones and people into the PBX.
 */

const LOWER = 'abcdefghijkmnopqrstuvwxyz';
const UPPER = 'ABCDEFGHJKLMNPQRSTUVWXYZ';
const DIGITS = '23456789';
// Look-alikes (l/1/I, O/0) are left out of what people type from a welcome mail; SIP ids keep all of a-z0-9.
const TYPEABLE = LOWER + UPPER + DIGITS;
const ALNUM_LOWER = 'abcdefghijklmnopqrstuvwxyz0123456789';
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/**
 * CSPRNG bytes drawn 16 KiB at a time: one randomBytes call per credential cost more than everything else a
 * 100,000-user import does per user. Each byte is used once.
 */
const pool = Buffer.alloc(16384);
let poolAt = pool.length;

function randomByte(): number {
  if (poolAt === pool.length) {
    crypto.randomFillSync(pool);
    poolAt = 0;
  }
  return pool[poolAt++];
}

/**
 * A uniformly random string over `alphabet` (at most 256 symbols). Rejection sampling: bytes at or above the
 * largest multiple of the alphabet size are dropped, so no symbol is favoured by the modulo.
 */
export function randomString(length: number, alphabet: string): string {
  if (alphabet.length < 2 || alphabet.length > 256 || /[^\x20-\x7e]/.test(alphabet)) {
    throw new RangeError('alphabet must have 2 to 256 printable ASCII symbols');
  }
  const limit = 256 - (256 % alphabet.length);
  // Built as one buffer, not with `+=`: concatenation leaves a rope of cons-strings (~30 bytes per character)
  // that a 100,000-user store would keep alive for every credential.
  const out = Buffer.allocUnsafe(length);
  let n = 0;
  while (n < length) {
    const b = randomByte();
    if (b < limit) out[n++] = alphabet.charCodeAt(b % alphabet.length);
  }
  return out.toString('latin1');
}

/** A SIP authentication id: 10 lower-case alphanumerics (3CX shows ids like `iac6zsf`). */
export function generateSipAuthId(): string {
  return randomString(10, ALNUM_LOWER);
}

/** A SIP password: 20 alphanumerics (~119 bits); phones get it by provisioning, nobody types it. */
export function generateSipPassword(): string {
  return randomString(20, ALNUM);
}

/**
 * A web-client password of 12 characters that always meets the seed rule (webPasswordProblem): one
 * lower-case letter, one upper-case letter and one digit are placed first, the rest drawn from all three
 * classes, then the whole is shuffled (Fisher–Yates with randomInt) so the classes sit anywhere.
 */
export function generateWebPassword(length = 12): string {
  if (length < 10) throw new RangeError('web passwords have at least 10 characters');
  const chars = [randomString(1, LOWER), randomString(1, UPPER), randomString(1, DIGITS), ...randomString(length - 3, TYPEABLE)];
  for (let i = chars.length - 1; i > 0; i--) {
    const j = crypto.randomInt(i + 1);
    [chars[i], chars[j]] = [chars[j], chars[i]];
  }
  return chars.join('');
}

/** True for PINs anyone would try first: one repeated digit, or a straight run up or down (123456, 987654). */
export function isTrivialPin(pin: string): boolean {
  if (/^(\d)\1*$/.test(pin)) return true;
  let up = true;
  let down = true;
  for (let i = 1; i < pin.length; i++) {
    const d = pin.charCodeAt(i) - pin.charCodeAt(i - 1);
    if (d !== 1) up = false;
    if (d !== -1) down = false;
  }
  return up || down;
}

/** A voicemail PIN of `digits` digits (default 6), never a trivial one. */
export function generateVmPin(digits = 6): string {
  for (;;) {
    const pin = String(crypto.randomInt(10 ** digits)).padStart(digits, '0');
    if (!isTrivialPin(pin)) return pin;
  }
}
