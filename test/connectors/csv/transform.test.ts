import test from 'ava';
import {
  anchorOf,
  csvRowToIdentity,
  duplicateKeyMessage,
  resolveKeyColumn,
  type CsvTransformContext,
} from '../../../connectors/csv/transform.js';
import type { CsvRow } from '../../../connectors/csv/client.js';

const ctx = (overrides: Partial<CsvTransformContext> = {}): CsvTransformContext => ({
  source: 'hr-csv',
  file: '/drop/users.csv',
  keyColumn: 'Number',
  ...overrides,
});

const row = (cells: Record<string, string>, overrides: Partial<CsvRow> = {}): CsvRow => ({ line: 7, cells, ...overrides });

const keyTable: Array<[string, string, string[], string]> = [
  ['auto with Number', 'auto', ['FirstName', 'Number', 'EmailAddress'], 'Number'],
  ['auto without Number', 'auto', ['FirstName', 'EmailAddress'], 'EmailAddress'],
  ['AUTO is auto', ' AUTO ', ['Number'], 'Number'],
  ['explicit, canonicalised', 'emailaddress', ['Number', 'EmailAddress'], 'EmailAddress'],
  ['explicit unknown column kept', 'EmployeeId', ['EmployeeId'], 'EmployeeId'],
];
for (const [name, setting, header, expected] of keyTable) {
  test(`resolveKeyColumn: ${name}`, (t) => {
    t.is(resolveKeyColumn(setting, header), expected);
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

test('csvRowToIdentity: a good row becomes an identity with the cells as attributes', (t) => {
  const cells = { Number: '1001', FirstName: 'Anna', Role: '”<rolename=””system_owners””/>”' };
  t.deepEqual(csvRowToIdentity(row(cells), ctx()), {
    identity: {
      source: 'hr-csv',
      anchor: '1001',
      attributes: cells,
      groups: [],
      disabled: false,
      origin: { file: '/drop/users.csv', line: 7 },
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
    ctx({ keyColumn: 'EmailAddress' }),
  );
  t.is(result.issue?.record, undefined);
  t.is(result.issue?.message, 'expected 4 cells as in the header, found 3');
});
