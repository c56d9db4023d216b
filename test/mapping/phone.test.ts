import test from 'ava';
import { getCountries, getCountryCallingCode, getExampleNumber, parsePhoneNumberFromString } from 'libphonenumber-js';
import examples from 'libphonenumber-js/mobile/examples';
import { fastE164, normalizeMac, splitNumbers, toE164 } from '../../src/mapping/phone.js';

const e164: Array<[string, string, string | undefined]> = [
  ['+1 201 555 0123', 'US', '+12015550123'],
  ['(201) 555-0123', 'US', '+12015550123'],
  ['201.555.0123', 'US', '+12015550123'],
  ['+44 20 7946 0958', 'US', '+442079460958'],
  ['020 7946 0958', 'GB', '+442079460958'],
  ['01 23 45 67 89', 'FR', '+33123456789'],
  ['+1 (555) 0100', 'US', undefined],
  ['555-0100', 'US', undefined],
  ['call me', 'US', undefined],
];
for (const [input, region, want] of e164) {
  test(`toE164(${JSON.stringify(input)}, ${region}) → ${want}`, (t) => {
    t.is(toE164(input, region), want);
  });
}

const splits: Array<[string, string[], string[]]> = [
  ['+12015550123;+12015550124', ['+12015550123', '+12015550124'], []],
  ['+12015550123, (201) 555-0124', ['+12015550123', '+12015550124'], []],
  ['+12015550123 +12015550124', ['+12015550123', '+12015550124'], []],
  ['+1 201 555 0123', ['+12015550123'], []],
  ['+12015550123; nope', ['+12015550123'], ['nope']],
  [' ; , ', [], []],
];
for (const [cell, numbers, invalid] of splits) {
  test(`splitNumbers(${JSON.stringify(cell)})`, (t) => {
    t.deepEqual(splitNumbers(cell, 'US'), { numbers, invalid });
  });
}

const macs: Array<[string, string | undefined]> = [
  ['00:15:65:AA:BB:CC', '001565aabbcc'],
  ['00-15-65-aa-bb-cc', '001565aabbcc'],
  ['0015.65aa.bbcc', '001565aabbcc'],
  ['001565AABBCC', '001565aabbcc'],
  [' 001565aabbcc ', '001565aabbcc'],
  ['00:15:65:AA:BB', undefined],
  ['001565AABBCG', undefined],
  ['00:15:65:AA:BB:CC:DD', undefined],
];
for (const [input, want] of macs) {
  test(`normalizeMac(${JSON.stringify(input)}) → ${want}`, (t) => {
    t.is(normalizeMac(input), want);
  });
}

test('fastE164 agrees with libphonenumber-js for every number it accepts, in every country', (t) => {
  // Variations of each country's example mobile number (the last digits randomised, deterministically)
  // plus random digits after the calling code: the fast path may decline any of them, never disagree.
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const digits = (n: number) => Array.from({ length: n }, () => Math.floor(random() * 10)).join('');
  let accepted = 0;
  const disagreements: string[] = [];
  for (const country of getCountries()) {
    const example = getExampleNumber(country, examples)?.number.slice(1);
    for (let k = 0; k < 60; k++) {
      let input: string;
      if (example && k < 40) {
        const keep = Math.max(2, example.length - 1 - Math.floor(random() * 6));
        input = `+${example.slice(0, keep)}${digits(example.length - keep)}`;
      } else input = `+${getCountryCallingCode(country)}${digits(4 + Math.floor(random() * 10))}`;
      const fast = fastE164(input);
      if (fast === undefined) continue;
      accepted++;
      const parsed = parsePhoneNumberFromString(input, { defaultCountry: 'US', extract: false });
      const library = parsed?.isValid() ? parsed.number : undefined;
      if (fast !== library) disagreements.push(`${country} ${input}: fast ${fast}, library ${library}`);
    }
  }
  t.deepEqual(disagreements, []);
  t.true(accepted > 5000, `only ${accepted} numbers took the fast path`);
});

test('fastE164 declines what it cannot decide alone', (t) => {
  t.is(fastE164('(201) 555-0123'), undefined); // national format: the library reads it with the region
  t.is(fastE164('+1 201 555 0123 x 23'), undefined); // extension
  t.is(fastE164('+800 1234 5678'), undefined); // non-geographic calling code
  t.is(fastE164('+1 (201) 555-0123'), '+12015550123');
});
