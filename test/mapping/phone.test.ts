import test from 'ava';
import { normalizeMac, splitNumbers, toE164 } from '../../src/mapping/phone.js';

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
