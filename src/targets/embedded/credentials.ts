import crypto from 'node:crypto';

/**
 * Credential generation for new users. Everything comes from the CSPRNG (crypto.randomFillSync),
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
 * A uniformly random integer in [0, n) for 2 <= n <= 256, from the pool (rejection sampling like
 * randomString). WARNING: crypto.randomInt costs microseconds per call, and the password shuffle and the
 * PIN took about ten calls per user.
 */
function randomBelow(n: number): number {
  const limit = 256 - (256 % n);
  for (;;) {
    const b = randomByte();
    if (b < limit) return b % n;
  }
}

/** Alphabets already validated (the few constants of this module, in practice). */
const checkedAlphabets = new Set<string>();
const scratch = Buffer.alloc(256);

/**
 * A uniformly random string over `alphabet` (at most 256 symbols). Rejection sampling: bytes at or above the
 * largest multiple of the alphabet size are dropped, so no symbol is favoured by the modulo.
 */
export function randomString(length: number, alphabet: string): string {
  if (!checkedAlphabets.has(alphabet)) {
    if (alphabet.length < 2 || alphabet.length > 256 || /[^\x20-\x7e]/.test(alphabet)) {
      throw new RangeError('alphabet must have 2 to 256 printable ASCII symbols');
    }
    if (checkedAlphabets.size < 64) checkedAlphabets.add(alphabet);
  }
  const limit = 256 - (256 % alphabet.length);
  // Built in a buffer, not with `+=`: concatenation leaves a rope of cons-strings (~30 bytes per character)
  // that a 100,000-user store would keep alive for every credential. The buffer is reused (toString copies
  // out of it), since allocating one per credential was a visible share of generating them.
  const out = length <= scratch.length ? scratch : Buffer.allocUnsafe(length);
  let n = 0;
  while (n < length) {
    const b = randomByte();
    if (b < limit) out[n++] = alphabet.charCodeAt(b % alphabet.length);
  }
  return out.toString('latin1', 0, length);
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
 * classes, then the whole is shuffled (Fisher–Yates with CSPRNG bytes) so the classes sit anywhere.
 */
export function generateWebPassword(length = 12): string {
  if (length < 10) throw new RangeError('web passwords have at least 10 characters');
  if (length > 256) throw new RangeError('web passwords have at most 256 characters');
  // In a reused buffer, one string at the end (an array of one-character strings, swapped and joined, cost
  // several times as much per user).
  const out = passwordScratch;
  out[0] = randomChar(LOWER);
  out[1] = randomChar(UPPER);
  out[2] = randomChar(DIGITS);
  for (let i = 3; i < length; i++) out[i] = randomChar(TYPEABLE);
  for (let i = length - 1; i > 0; i--) {
    const j = randomBelow(i + 1);
    const c = out[i];
    out[i] = out[j];
    out[j] = c;
  }
  return out.toString('latin1', 0, length);
}

const passwordScratch = Buffer.alloc(256);

/** The code of a uniformly random symbol of `alphabet` (2 to 256 ASCII symbols). */
function randomChar(alphabet: string): number {
  return alphabet.charCodeAt(randomBelow(alphabet.length));
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
    // Uniform over all `digits`-digit strings, as randomInt(10 ** digits) zero-padded would be.
    const pin = randomString(digits, '0123456789');
    if (!isTrivialPin(pin)) return pin;
  }
}
