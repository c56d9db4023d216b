import test from 'ava';
import {
  generateSipAuthId,
  generateSipPassword,
  generateVmPin,
  generateWebPassword,
  isTrivialPin,
  randomString,
} from '../../../src/targets/embedded/credentials.js';
import { vmPinProblem, webPasswordProblem } from '../../../src/targets/embedded/rules.js';

const DRAWS = 1000;

test(`generated web passwords meet the seed rule over ${DRAWS} draws`, (t) => {
  const seen = new Set<string>();
  for (let i = 0; i < DRAWS; i++) {
    const password = generateWebPassword();
    t.is(webPasswordProblem(password), undefined, password);
    seen.add(password);
  }
  t.is(seen.size, DRAWS, 'no repeats');
});

test('web passwords of other lengths meet the rule too, and never hold look-alikes (l, 1, I, O, 0)', (t) => {
  for (const length of [10, 16, 64]) {
    for (let i = 0; i < 100; i++) {
      const password = generateWebPassword(length);
      t.is(password.length, length);
      t.is(webPasswordProblem(password), undefined, password);
      t.regex(password, /^[a-km-zA-HJ-NP-Z2-9]+$/, password);
    }
  }
  t.throws(() => generateWebPassword(9), { instanceOf: RangeError });
});

test('the character classes of a web password are not always in the same place', (t) => {
  const firstIsDigit = new Set<boolean>();
  for (let i = 0; i < 200; i++) firstIsDigit.add(/^[0-9]/.test(generateWebPassword()));
  t.deepEqual([...firstIsDigit].sort(), [false, true]);
});

test(`generated voicemail PINs are 6 digits, valid and never trivial over ${DRAWS} draws`, (t) => {
  for (let i = 0; i < DRAWS; i++) {
    const pin = generateVmPin();
    t.regex(pin, /^[0-9]{6}$/);
    t.is(vmPinProblem(pin), undefined);
    t.false(isTrivialPin(pin), pin);
  }
});

const trivial: Array<[string, boolean]> = [
  ['000000', true],
  ['123456', true],
  ['987654', true],
  ['1111', true],
  ['123457', false],
  ['905112', false],
];
for (const [pin, expected] of trivial) {
  test(`PIN ${pin} trivial: ${expected}`, (t) => {
    t.is(isTrivialPin(pin), expected);
  });
}

test('SIP auth ids are 10 lower-case alphanumerics and SIP passwords 20 alphanumerics', (t) => {
  for (let i = 0; i < 200; i++) {
    t.regex(generateSipAuthId(), /^[a-z0-9]{10}$/);
    t.regex(generateSipPassword(), /^[A-Za-z0-9]{20}$/);
  }
});

test('randomString uses every symbol of the alphabet and nothing else', (t) => {
  const counts = new Map<string, number>();
  for (const c of randomString(30_000, 'abc')) counts.set(c, (counts.get(c) ?? 0) + 1);
  t.deepEqual([...counts.keys()].sort(), ['a', 'b', 'c']);
  // Uniform: each near 10,000 (a modulo bias of 256 % 3 would still pass this; the spread catches a broken mapping).
  for (const n of counts.values()) t.true(n > 9_000 && n < 11_000, String(n));
});

test('credentials never come from Math.random', (t) => {
  const original = Math.random;
  Math.random = () => {
    throw new Error('Math.random used');
  };
  try {
    t.notThrows(() => {
      generateWebPassword();
      generateSipPassword();
      generateSipAuthId();
      generateVmPin();
    });
  } finally {
    Math.random = original;
  }
});
