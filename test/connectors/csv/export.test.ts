import test from 'ava';
import { formatThreeCxCsv, threeCxRow } from '../../../connectors/csv/export.js';
import { THREECX_COLUMNS } from '../../../connectors/csv/columns.js';
import { openCsvFile } from '../../../connectors/csv/client.js';
import { readCsvFile } from '../../../connectors/csv/read.js';
import { parseRole } from '../../../src/model/roles.js';
import { byType, collect, csvSettings, pbxUser, tempDir } from './helpers.js';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';

const anna = pbxUser({
  extension: '1001',
  firstName: 'Anna',
  lastName: 'Müller, geb. Schmidt',
  email: 'anna@example.com',
  mobile: '+4915112345678',
  outboundCallerId: '+4930123456',
  language: 'de',
  department: 'Sales',
  extraDepartments: ['Support'],
  role: 'system_owners',
  dids: ['+4930123450', '+4930123451'],
  vmEnabled: true,
  vmPin: '7318',
  hideInPhonebook: true,
  recordCalls: true,
  phones: [
    { mac: '000b82aabbcc', model: 'Grandstream GXP2170', template: 'grandstream.ph.xml' },
    { mac: '805ec0112233', model: 'Yealink T46U' },
  ],
  enabled: false,
  options: { Ringtone: 'Ring3', vmemailoptions: '2', AllowLanOnly: '1', VMPIN: '9999', Disabled: '0', NotAColumn: 'x' },
});
const ben = pbxUser({
  id: 'u-2',
  extension: '1002',
  firstName: 'Ben',
  lastName: 'Baker',
  email: null,
  mobile: null,
  language: null,
  department: 'DEFAULT',
  role: 'users',
  vmEnabled: false,
  phones: [],
  options: {},
});

test('threeCxRow maps the typed fields, options into their columns, and never the PIN', (t) => {
  const row = threeCxRow(anna);
  t.like(row, {
    Number: '1001',
    FirstName: 'Anna',
    LastName: 'Müller, geb. Schmidt',
    EmailAddress: 'anna@example.com',
    MobileNumber: '+4915112345678',
    OutboundCallerID: '+4930123456',
    DID: '+4930123450;+4930123451',
    Role: '<rolename="system_owners"/>',
    Department: 'Sales',
    MAC: '000b82aabbcc',
    Template: 'grandstream.ph.xml',
    Model: 'Grandstream GXP2170',
    Language: 'de',
    VMEnable: '1',
    RecordCalls: '1',
    HideInPhonebook: '1',
    // the typed `enabled: false` wins over options.Disabled
    Disabled: '1',
    Ringtone: 'Ring3',
    VMEmailOptions: '2',
    AllowLanOnly: '1',
    VMPIN: '',
  });
  t.false('NotAColumn' in row);
  t.deepEqual(Object.keys(row), [...THREECX_COLUMNS]);
});

test('formatThreeCxCsv writes the full 3CX header in order and quotes the role cell as CSV does', async (t) => {
  const text = await formatThreeCxCsv([anna, ben]);
  const lines = text.split('\r\n');
  t.is(lines[0], THREECX_COLUMNS.join(','));
  t.true(lines[1].startsWith('1001,Anna,"Müller, geb. Schmidt",anna@example.com,+4915112345678,+4930123456,+4930123450;+4930123451,"<rolename=""system_owners""/>",Sales,'));
  t.true(lines[2].startsWith('1002,Ben,Baker,,,,,"<rolename=""users""/>",DEFAULT,'));
  t.is(lines[3], '');
  t.is(lines.length, 4);
  t.false(text.includes('7318'));
  t.false(text.includes('9999'));
});

test('formatThreeCxCsv accepts an async iterable', async (t) => {
  async function* users() {
    yield ben;
  }
  t.is(await formatThreeCxCsv(users()), await formatThreeCxCsv([ben]));
});

test('round trip: the export read back by our reader gives the same values', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'export.csv');
  await writeFile(file, await formatThreeCxCsv([anna, ben]));
  const csv = await openCsvFile(file);
  t.deepEqual(csv.header, [...THREECX_COLUMNS]);
  await csv.close();

  const { identities, issues, ends } = byType(await collect(readCsvFile({ source: 'back', file, settings: csvSettings(dir) })));
  t.deepEqual(issues, []);
  t.true(ends[0].type === 'end' && ends[0].complete);
  t.deepEqual(
    identities.map((i) => i.attributes),
    [threeCxRow(anna), threeCxRow(ben)],
  );
  t.is(parseRole(String(identities[0].attributes.Role)), 'system_owners');
  t.deepEqual(String(identities[0].attributes.DID).split(';'), anna.dids);
});
