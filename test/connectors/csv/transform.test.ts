import test from 'ava';
import {
  anchorOf,
  csvRowToIdentity,
  duplicateKeyMessage,
  resolveKey,
  rowKey,
  type CsvKey,
  type CsvTransformContext,
} from '../../../connectors/csv/transform.js';
import type { CsvRow } from '../../../connectors/csv/client.js';

const ctx = (overrides: Partial<CsvTransformContext> = {}): CsvTransformContext => ({
  source: 'hr-csv',
  file: '/drop/users.csv',
  key: { columns: ['Number'], auto: false },
  ...overrides,
});

/** The key `auto` gives a 3CX header (Number and EmailAddress). */
const AUTO: CsvKey = { columns: ['Number', 'EmailAddress'], auto: true };

const row = (cells: Record<string, string>, overrides: Partial<CsvRow> = {}): CsvRow => ({ line: 7, cells, ...overrides });

const keyTable: Array<[string, string, string[], CsvKey]> = [
  ['auto with Number and EmailAddress: per row, Number first', 'auto', ['FirstName', 'Number', 'EmailAddress'], AUTO],
  ['auto with Number only', 'auto', ['FirstName', 'Number'], { columns: ['Number'], auto: true }],
  ['auto without Number', 'auto', ['FirstName', 'EmailAddress'], { columns: ['EmailAddress'], auto: true }],
  ['AUTO is auto', ' AUTO ', ['Number'], { columns: ['Number'], auto: true }],
  ['explicit, canonicalised', 'emailaddress', ['Number', 'EmailAddress'], { columns: ['EmailAddress'], auto: false }],
  ['explicit Number: no fallback', 'Number', ['Number', 'EmailAddress'], { columns: ['Number'], auto: false }],
  ['explicit unknown column kept', 'EmployeeId', ['EmployeeId'], { columns: ['EmployeeId'], auto: false }],
];
for (const [name, setting, header, expected] of keyTable) {
  test(`resolveKey: ${name}`, (t) => {
    t.deepEqual(resolveKey(setting, header), expected);
  });
}

// The anchor a row gets and what it stands for: the choice is per row, so one file may mix both kinds.
const choiceTable: Array<[string, CsvKey, Record<string, string>, { anchor: string; column: string; matchBound?: 'extension' | 'email' } | { field: string; message: RegExp }]> = [
  ['auto, Number filled: the extension', AUTO, { Number: '1001', EmailAddress: 'Anna@X.com' }, { anchor: '1001', column: 'Number', matchBound: 'extension' }],
  ['auto, Number empty: the e-mail, lower-cased', AUTO, { Number: '', EmailAddress: 'Anna@X.com' }, { anchor: 'anna@x.com', column: 'EmailAddress', matchBound: 'email' }],
  ['auto, no Number column: the e-mail', { columns: ['EmailAddress'], auto: true }, { EmailAddress: 'b@x.com' }, { anchor: 'b@x.com', column: 'EmailAddress', matchBound: 'email' }],
  ['auto, neither: rejected, naming the e-mail column', AUTO, { Number: '', EmailAddress: '' }, { field: 'EmailAddress', message: /^no Number and no EmailAddress: a row without an extension needs its e-mail address/ }],
  ['auto, Number column only and empty: rejected', { columns: ['Number'], auto: true }, { Number: '' }, { field: 'Number', message: /^no Number, and the file has no EmailAddress column/ }],
  ['explicit Number: the Number, nothing to match by', { columns: ['Number'], auto: false }, { Number: '1001', EmailAddress: 'a@x.com' }, { anchor: '1001', column: 'Number' }],
  ['explicit Number, empty: rejected although the e-mail is there', { columns: ['Number'], auto: false }, { Number: '', EmailAddress: 'a@x.com' }, { field: 'Number', message: /^no value in key column Number$/ }],
  ['explicit EmailAddress: the e-mail even with a Number', { columns: ['EmailAddress'], auto: false }, { Number: '1001', EmailAddress: 'A@x.com' }, { anchor: 'a@x.com', column: 'EmailAddress' }],
];
for (const [name, key, cells, want] of choiceTable) {
  test(`csvRowToIdentity anchor choice: ${name}`, (t) => {
    const result = csvRowToIdentity(row({ FirstName: 'Anna', ...cells }), ctx({ key }));
    if ('anchor' in want) {
      t.is(result.identity?.anchor, want.anchor);
      t.is(result.keyColumn, want.column);
      t.is(result.identity?.matchBound, want.matchBound);
      t.deepEqual(rowKey(cells, key), { column: want.column, anchor: want.anchor });
    } else {
      t.is(result.identity, undefined);
      t.like(result.issue, { file: '/drop/users.csv', line: 7, field: want.field });
      t.regex(result.issue?.message ?? '', want.message);
      t.is(rowKey(cells, key), undefined);
    }
  });
}

const anchorTable: Array<[string, Record<string, string>, string, string | undefined]> = [
  ['extension as is', { Number: '1001' }, 'Number', '1001'],
  ['e-mail lower-cased', { EmailAddress: 'Anna.Adams@Example.COM' }, 'EmailAddress', 'anna.adams@example.com'],
  ['other keys keep their case', { EmployeeId: 'AB-12' }, 'EmployeeId', 'AB-12'],
  ['empty cell: none', { Number: '' }, 'Number', undefined],
  ['missing column: none', {}, 'Number', undefined],
];
for (const [name, cells, key, expected] of anchorTable) {
  test(`anchorOf: ${name}`, (t) => {
    t.is(anchorOf(cells, key), expected);
  });
}

test('csvRowToIdentity: a good row becomes an identity with the cells as attributes, partial to its file\'s columns', (t) => {
  const cells = { Number: '1001', FirstName: 'Anna', Role: '”<rolename=””system_owners””/>”' };
  t.deepEqual(csvRowToIdentity(row(cells), ctx()), {
    keyColumn: 'Number',
    identity: {
      source: 'hr-csv',
      anchor: '1001',
      attributes: cells,
      groups: [],
      disabled: false,
      origin: { file: '/drop/users.csv', line: 7 },
      // The file's columns are all the record has: a column it lacks is not supplied (not empty).
      partialAttributes: true,
    },
  });
});

test('csvRowToIdentity: a row without key is an issue naming the key column', (t) => {
  t.deepEqual(csvRowToIdentity(row({ Number: '', FirstName: 'Anna' }), ctx()), {
    issue: {
      source: 'hr-csv',
      file: '/drop/users.csv',
      line: 7,
      field: 'Number',
      message: 'no value in key column Number',
    },
  });
});

test('csvRowToIdentity: a row with a read problem is an issue with its column and (when readable) key', (t) => {
  const result = csvRowToIdentity(
    row({ Number: '1002', FirstName: 'Ben' }, { problem: { message: 'expected 3 cells as in the header, found 2', column: 'LastName' } }),
    ctx(),
  );
  t.deepEqual(result, {
    issue: {
      source: 'hr-csv',
      file: '/drop/users.csv',
      line: 7,
      field: 'LastName',
      record: '1002',
      message: 'expected 3 cells as in the header, found 2',
    },
  });
});

const dupTable: Array<[string, string, string]> = [
  ['Number', '1001', 'duplicate extension 1001, first on line 3'],
  ['EmailAddress', 'a@x.com', 'duplicate e-mail address a@x.com, first on line 3'],
  ['EmployeeId', 'E1', 'duplicate EmployeeId value E1, first on line 3'],
];
for (const [key, anchor, message] of dupTable) {
  test(`duplicateKeyMessage: ${key}`, (t) => {
    t.is(duplicateKeyMessage(key, anchor, 3), message);
  });
}

test('csvRowToIdentity: a broken row never names a secret cell value as its record', (t) => {
  // One cell short before the key: the PIN slid into the key column.
  const result = csvRowToIdentity(
    row({ FirstName: 'Ben', EmailAddress: '4711', VMPIN: '4711' }, { problem: { message: 'expected 4 cells as in the header, found 3' } }),
    ctx({ key: { columns: ['EmailAddress'], auto: false } }),
  );
  t.is(result.issue?.record, undefined);
  t.is(result.issue?.message, 'expected 4 cells as in the header, found 3');
});
