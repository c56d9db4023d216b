import { readFile } from 'node:fs/promises';
import test from 'ava';
import { parse } from 'yaml';
import type { Identity } from '../../src/model/index.js';
import { loadMapping } from '../../src/mapping/load.js';
import type { MappingSpec } from '../../src/mapping/spec.js';
import type { Mapping } from '../../src/mapping/types.js';
import { identity, issuesOf, options, userOf } from './_helpers.js';

// Header and sample row as printed in the 3CX V20 users guide (seeds/000), typographic quotes included.
const HEADER =
  'Number,FirstName,LastName,EmailAddress,MobileNumber,OutboundCallerID,DID,Role,Department,ClickToCallId,ClickToCallAuth,WMApprove,MAC,Template,Model,Router,Language,Ringtone,QRingtone,VMEnable,VMLanguage,VMPlayMsgDateTime,VMPIN,VMEmailOptions,VMNoPin,VMPlayCallerID,RecordCalls,RecordExternal,RecordCanSee,RecordCanDelete,RecordStartStop,Disabled,HideFWrules,DisableExternalCalls,HideInPhonebook,CallScreening,PinProtected,PinTimeout,AllowLanOnly,SIPID,MS365SignInDisabled,MS365CalendarDisabled,MS365ContactsDisabled,MS365TeamsDisabled,GoogleSignInDisabled';
const SAMPLE =
  '1001,Name,Surname,email@,,,,”<rolename=””system_owners””/>”,DEFAULT,namesurname,0,0,,,,,,,,1,43E89581-DAD8-B6F4-7660-15D48B5E6026,0,731826,1,1,0,0,,0,0,1,,0,0,0,0,0,,1,,,,,,';

/** A CSV row as the CSV connector delivers it: attributes named by the header (no real quoting in these rows). */
function row(line: string, overrides: Record<string, string> = {}): Identity {
  const names = HEADER.split(',');
  const cells = line.split(',');
  const attributes: Record<string, string> = {};
  names.forEach((n, i) => (attributes[n] = cells[i] ?? ''));
  return identity({ source: 'inbox', anchor: attributes.Number, attributes: { ...attributes, ...overrides }, origin: { file: 'users.csv', line: 2 } });
}

let mapping: Mapping;
test.before(async () => {
  mapping = await loadMapping('mappings/3cx-csv.yml', options);
});

test('3cx-csv: the seed sample row is rejected for its e-mail "email@"', async (t) => {
  const result = await mapping.map(row(SAMPLE));
  t.is(result.kind, 'invalid');
  t.deepEqual(issuesOf(result), [
    { source: 'inbox', file: 'users.csv', line: 2, field: 'EmailAddress', record: '1001', message: '"email@" is not a valid e-mail address' },
  ]);
});

// The sample's Disabled cell is empty: no `enabled` (default: null), so the PBX user keeps its enablement.
test('3cx-csv: a corrected copy of the sample row maps to extension 1001, system_owners, DEFAULT', async (t) => {
  const user = userOf(await mapping.map(row(SAMPLE, { EmailAddress: 'Name.Surname@Example.com' })));
  t.deepEqual(user.extension, { kind: 'fixed', value: '1001', rule: 'mappings/3cx-csv.yml#extension' });
  t.deepEqual(user.fields, {
    firstName: 'Name',
    lastName: 'Surname',
    email: 'name.surname@example.com',
    mobile: null,
    outboundCallerId: null,
    language: null,
    dids: [],
    vmEnabled: true,
    vmPin: '731826',
    recordCalls: false,
    hideInPhonebook: false,
    phones: [],
    options: {
      ClickToCallId: 'namesurname',
      ClickToCallAuth: '0',
      WMApprove: '0',
      VMLanguage: '43E89581-DAD8-B6F4-7660-15D48B5E6026',
      VMPlayMsgDateTime: '0',
      VMEmailOptions: '1',
      VMNoPin: '1',
      VMPlayCallerID: '0',
      RecordCanSee: '0',
      RecordCanDelete: '0',
      RecordStartStop: '1',
      HideFWrules: '0',
      DisableExternalCalls: '0',
      CallScreening: '0',
      PinProtected: '0',
      AllowLanOnly: '1',
    },
    department: 'DEFAULT',
    role: 'system_owners',
  });
  t.true(user.createDepartments);
  t.deepEqual(user.adopt, [], 'adoption of unmanaged users is opt-in');
});

test('3cx-csv: a full row with phones, DIDs and Disabled=1', async (t) => {
  const user = userOf(
    await mapping.map(
      row(SAMPLE, {
        Number: '',
        EmailAddress: 'ann@example.com',
        MobileNumber: '(201) 555-0199',
        OutboundCallerID: '+1 201 555 0100',
        DID: '+12015550101;+12015550100',
        Role: 'Manager',
        Department: 'Sales',
        MAC: '00:15:65:AA:BB:CC',
        Model: 'Yealink T46U',
        Template: 'yealinkT4x.ph.xml',
        Disabled: '1',
        Language: 'FR',
      }),
    ),
  );
  t.like(user.fields, {
    mobile: '+12015550199',
    outboundCallerId: '+12015550100',
    dids: ['+12015550100', '+12015550101'],
    role: 'managers',
    department: 'Sales',
    enabled: false,
    language: 'FR',
    phones: [{ mac: '001565aabbcc', model: 'Yealink T46U', template: 'yealinkT4x.ph.xml' }],
  });
  t.is(user.extension.kind, 'allocate');
});

test('3cx-csv: an empty or missing VMEnable keeps voicemail on (3CX default); 0 switches it off', async (t) => {
  for (const [cell, expected] of [['', true], ['1', true], ['0', false]] as const) {
    const user = userOf(await mapping.map(row(SAMPLE, { EmailAddress: 'ann@example.com', VMEnable: cell })));
    t.is(user.fields.vmEnabled, expected, `VMEnable "${cell}"`);
  }
});

test('3cx-csv: every column of the 3CX header is mapped, first-class or as an option', async (t) => {
  // The shipped file uses the shorthand (a bare column name) wherever it can; these are all its column reads.
  const spec = parse(await readFile('mappings/3cx-csv.yml', 'utf8')) as MappingSpec;
  const columns = [
    ...Object.values(spec.fields),
    spec.extension?.from,
    spec.dids,
    spec.department?.from,
    ...(spec.role?.rules ?? []).map((r) => r.from),
    typeof spec.voicemail?.enabled === 'object' ? spec.voicemail.enabled.from : spec.voicemail?.enabled,
    spec.voicemail?.pin,
    spec.recordCalls,
    spec.hideInPhonebook,
    typeof spec.enabled === 'object' ? spec.enabled.from : spec.enabled,
    ...(spec.phones ?? []).flatMap((p) => [p.mac, p.model, p.template]),
    ...(spec.options ?? []),
  ];
  t.deepEqual([...columns].sort(), HEADER.split(',').sort());
});

test('3cx-csv: no JSONata (every value is a plain `from`), so the mapping is deterministic; 20,000 rows all map', async (t) => {
  // The speed of this is the benchmark's business (bench/import.ts); what keeps it fast is checked here.
  t.true(mapping.deterministic);
  const rows = Array.from({ length: 20_000 }, (_, i) =>
    row(SAMPLE, { Number: String(10_000 + i), FirstName: `First${i}`, EmailAddress: `user${i}@example.com`, MAC: i % 2 ? '00:15:65:aa:bb:cc' : '' }),
  );
  let users = 0;
  for (const r of rows) if ((await mapping.map(r)).kind === 'user') users++;
  t.is(users, rows.length);
});

test('3cx-csv: the rule of every field it sets, which the plan names for a change of that field', (t) => {
  const at = (p: string) => `mappings/3cx-csv.yml#${p}`;
  t.deepEqual(mapping.rules, {
    firstName: at('fields.firstName'),
    lastName: at('fields.lastName'),
    email: at('fields.email'),
    mobile: at('fields.mobile'),
    outboundCallerId: at('fields.outboundCallerId'),
    language: at('fields.language'),
    dids: at('dids'),
    vmEnabled: at('voicemail.enabled'),
    vmPin: at('voicemail.pin'),
    hideInPhonebook: at('hideInPhonebook'),
    recordCalls: at('recordCalls'),
    enabled: at('enabled'),
    phones: at('phones'),
    options: at('options'),
    department: at('department'),
    role: at('role'),
  });
  // Every field a mapped user of this file carries has its rule.
  const user = userOf(mapping.map(row(SAMPLE, { EmailAddress: 'a@example.com' })) as Awaited<ReturnType<Mapping['map']>>);
  for (const field of Object.keys(user.fields)) t.truthy((mapping.rules as Record<string, string>)[field], field);
});

/** A row of a file with only the given columns, as the CSV connector delivers it. */
function sparseRow(cells: Record<string, string>): Identity {
  return identity({ source: 'inbox', anchor: cells.Number, attributes: cells, origin: { file: 'few.csv', line: 2 }, partialAttributes: true });
}

test('3cx-csv: a file without a column leaves its fields to the PBX for an existing user; a new user gets the defaults', async (t) => {
  const user = userOf(await mapping.map(sparseRow({ Number: '200', FirstName: 'Noelle', LastName: 'Melton', EmailAddress: 'noelle@example.com' })));
  // Compared with an existing user: the columns the file has (options are compared per key, and it has none).
  t.deepEqual(user.fields, { firstName: 'Noelle', lastName: 'Melton', email: 'noelle@example.com', options: {} });
  // Used only when the user is created.
  t.deepEqual(user.createOnly, {
    mobile: null,
    outboundCallerId: null,
    language: null,
    dids: [],
    vmEnabled: true,
    recordCalls: false,
    hideInPhonebook: false,
    phones: [],
    department: 'DEFAULT',
    role: 'users',
  });
  const left = user.reasons.filter((r) => r.reason.includes('an existing user keeps what the PBX has')).map((r) => r.field);
  t.deepEqual(left.sort(), Object.keys(user.createOnly!).sort());
});

test('3cx-csv: a column that is there but empty still applies (an emptied MAC cell removes the phone); a directory record without an attribute is empty', async (t) => {
  const emptied = userOf(await mapping.map(sparseRow({ Number: '200', FirstName: 'Noelle', MAC: '', Role: '', Department: '' })));
  t.deepEqual(emptied.fields.phones, []);
  t.is(emptied.fields.role, 'users');
  t.is(emptied.fields.department, 'DEFAULT');
  t.is(emptied.createOnly?.phones, undefined);
  // The same attributes from a source whose records always list every attribute they have (no partialAttributes).
  const directory = userOf(await mapping.map(identity({ source: 'hr', anchor: '200', attributes: { Number: '200', FirstName: 'Noelle' } })));
  t.is(directory.createOnly, undefined);
  t.deepEqual(directory.fields.phones, []);
  t.is(directory.fields.role, 'users');
});
