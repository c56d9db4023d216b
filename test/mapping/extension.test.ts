import test from 'ava';
import type { ExtensionRequest } from '../../src/mapping/types.js';
import { BASE, issuesOf, mapWith, problemsOf, userOf } from './_helpers.js';

interface Row {
  name: string;
  extension: string;
  attributes: Record<string, unknown>;
  want?: ExtensionRequest;
  issue?: { field: string; message: RegExp };
}

const global = [{ from: '1000', to: '1999' }];

const rows: Row[] = [
  { name: 'fixed from a column', extension: '{ from: Number }', attributes: { Number: '1001' }, want: { kind: 'fixed', value: '1001', rule: 'test.yml#extension' } },
  { name: 'digits of ipPhone', extension: '{ from: ipPhone, transform: digits }', attributes: { ipPhone: ' 23-01 ' }, want: { kind: 'fixed', value: '2301', rule: 'test.yml#extension' } },
  { name: 'last 4 digits of a DID', extension: '{ from: telephoneNumber, transform: { lastDigits: 4 } }', attributes: { telephoneNumber: '+1 (201) 555-2301' }, want: { kind: 'fixed', value: '2301', rule: 'test.yml#extension' } },
  { name: 'last 4 digits of an ipPhone with an x extension', extension: '{ from: ipPhone, transform: { lastDigits: 4 } }', attributes: { ipPhone: '+1 (555) 0100 x 2301' }, want: { kind: 'fixed', value: '2301', rule: 'test.yml#extension' } },
  { name: 'digits of the whole phone are too many', extension: '{ from: ipPhone, transform: digits }', attributes: { ipPhone: '+1 (555) 0100 x 2301' }, issue: { field: 'ipPhone', message: /2 to 10 digits/ } },
  { name: 'too few digits for lastDigits', extension: '{ from: ipPhone, transform: { lastDigits: 4 } }', attributes: { ipPhone: 'x12' }, issue: { field: 'ipPhone', message: /fewer than 4 digits/ } },
  { name: 'no digits at all', extension: '{ from: ipPhone, transform: digits }', attributes: { ipPhone: 'n/a' }, issue: { field: 'ipPhone', message: /no digits/ } },
  { name: 'non-digits without transform', extension: '{ from: Number }', attributes: { Number: '10a1' }, issue: { field: 'Number', message: /digits only/ } },
  { name: 'emergency 911', extension: '{ from: Number }', attributes: { Number: '911' }, issue: { field: 'Number', message: /emergency/ } },
  { name: 'emergency 112', extension: '{ from: Number }', attributes: { Number: '112' }, issue: { field: 'Number', message: /emergency/ } },
  { name: 'emergency 15', extension: '{ from: Number }', attributes: { Number: '15' }, issue: { field: 'Number', message: /emergency/ } },
  { name: 'emergency 17', extension: '{ from: Number }', attributes: { Number: '17' }, issue: { field: 'Number', message: /emergency/ } },
  { name: 'emergency 18', extension: '{ from: Number }', attributes: { Number: '18' }, issue: { field: 'Number', message: /emergency/ } },
  { name: 'emergency 999', extension: '{ from: Number }', attributes: { Number: '999' }, issue: { field: 'Number', message: /emergency/ } },
  { name: 'emergency after digits transform', extension: '{ from: ipPhone, transform: digits }', attributes: { ipPhone: '9-1-1' }, issue: { field: 'ipPhone', message: /emergency/ } },
  { name: 'reserved range', extension: '{ from: Number }', attributes: { Number: '1950' }, issue: { field: 'Number', message: /reserved/ } },
  { name: 'empty: allocate from global ranges', extension: '{ from: Number }', attributes: { Number: '' }, want: { kind: 'allocate', ranges: global, rule: 'test.yml#extension' } },
  { name: 'no extension section: allocate', extension: '', attributes: {}, want: { kind: 'allocate', ranges: global, rule: 'test.yml#extension' } },
  { name: 'empty: allocate from mapping ranges', extension: "{ from: Number, ranges: [{ from: '200', to: '299' }] }", attributes: {}, want: { kind: 'allocate', ranges: [{ from: '200', to: '299' }], rule: 'test.yml#extension.ranges' } },
  { name: 'empty with ifMissing: invalid', extension: '{ from: Number, ifMissing: invalid }', attributes: { Number: '' }, issue: { field: 'Number', message: /extension is required/ } },
  { name: 'expression source', extension: "{ expr: \"phones[type='work'][0].value\", transform: { lastDigits: 3 } }", attributes: { phones: [{ type: 'work', value: '+12015550456' }] }, want: { kind: 'fixed', value: '456', rule: 'test.yml#extension' } },
];

for (const row of rows) {
  test(`extension: ${row.name}`, async (t) => {
    const yaml = `${BASE}${row.extension ? `extension: ${row.extension}\n` : ''}`;
    const result = await mapWith(yaml, { attributes: { FirstName: 'Ann', ...row.attributes } });
    if (row.issue) {
      t.is(result.kind, 'invalid');
      t.true(issuesOf(result).some((i) => i.field === row.issue!.field && row.issue!.message.test(i.message)), JSON.stringify(issuesOf(result)));
    } else t.deepEqual(userOf(result).extension, row.want);
  });
}

test('extension: per-department ranges follow the mapped department', async (t) => {
  const yaml = `${BASE}department: { from: dept }\nextension:\n  from: Number\n  departmentRanges:\n    Sales: [{ from: '2000', to: '2099' }]\n`;
  const sales = userOf(await mapWith(yaml, { attributes: { FirstName: 'Ann', dept: 'sales' } }));
  t.deepEqual(sales.extension, { kind: 'allocate', ranges: [{ from: '2000', to: '2099' }], rule: 'test.yml#extension.departmentRanges' });
  const other = userOf(await mapWith(yaml, { attributes: { FirstName: 'Ann', dept: 'Support' } }));
  t.deepEqual(other.extension, { kind: 'allocate', ranges: global, rule: 'test.yml#extension' });
});

test('extension: allocation without any range is a mapping problem', (t) => {
  const problems = problemsOf(`${BASE}extension: { from: Number }\n`, {
    numbering: { ranges: [], reserved: [], emergency: [] },
    removal: { action: 'disable', graceDays: 30 },
  });
  t.deepEqual(problems.map((p) => [p.path, p.line]), [['extension', 3]]);
  t.regex(problems[0].message, /no ranges/);
});

test('extension: malformed ranges are mapping problems', (t) => {
  const problems = problemsOf(`${BASE}extension:\n  ranges:\n    - { from: '100', to: '1999' }\n    - { from: '300', to: '200' }\n`);
  t.deepEqual(problems.map((p) => [p.path, p.line]), [['extension.ranges[0]', 5], ['extension.ranges[1]', 6]]);
});
