import test from 'ava';
import type { UserFields } from '../../src/model/index.js';
import type { MappingResult } from '../../src/mapping/types.js';
import { BASE, compile, identity, issuesOf, mapWith, userOf } from './_helpers.js';

interface Row {
  name: string;
  /** Mapping text after `fields: firstName`. */
  yaml: string;
  attributes: Record<string, unknown>;
  groups?: string[];
  /** Expected fields (checked key by key), or the expected issue. */
  fields?: Partial<UserFields>;
  absent?: Array<keyof UserFields>;
  issue?: { field: string; message: RegExp };
}

const rows: Row[] = [
  { name: 'from: plain attribute', yaml: '  email: mail\n', attributes: { FirstName: 'Ann', mail: 'Ann@Example.COM' }, fields: { email: 'ann@example.com' } },
  { name: 'from: case-insensitive attribute name', yaml: '  email: { from: MAIL }\n', attributes: { FirstName: 'Ann', mail: 'ann@example.com' }, fields: { email: 'ann@example.com' } },
  { name: 'from: first value of a multi-valued attribute', yaml: '  email: mail\n', attributes: { FirstName: 'Ann', mail: ['', 'ann@example.com', 'x@example.com'] }, fields: { email: 'ann@example.com' } },
  { name: 'expr over attributes', yaml: "  displayName: { expr: \"FirstName & ' ' & LastName\" }\n", attributes: { FirstName: 'Ann', LastName: 'Lee' }, fields: { displayName: 'Ann Lee' } },
  { name: 'expr over groups', yaml: "  language: { expr: \"'France' in groups ? 'FR' : 'EN'\" }\n", attributes: { FirstName: 'Ann' }, groups: ['France'], fields: { language: 'FR' } },
  { name: 'expr over nested objects', yaml: '  lastName: { expr: name.familyName }\n', attributes: { FirstName: 'Ann', name: { familyName: 'Lee' } }, fields: { lastName: 'Lee' } },
  { name: 'value: constant', yaml: '  language: { value: DE }\n', attributes: { FirstName: 'Ann' }, fields: { language: 'DE' } },
  { name: 'default when empty', yaml: '  language: { from: lang, default: EN }\n', attributes: { FirstName: 'Ann', lang: '  ' }, fields: { language: 'EN' } },
  { name: 'values are trimmed', yaml: '', attributes: { FirstName: '  Ann ' }, fields: { firstName: 'Ann' } },
  { name: 'empty nullable field clears (null)', yaml: '  mobile: mobile\n  displayName: dn\n  email: mail\n  language: lang\n', attributes: { FirstName: 'Ann', mobile: '' }, fields: { mobile: null, displayName: null, email: null, language: null } },
  { name: 'empty last name becomes ""', yaml: '  lastName: LastName\n', attributes: { FirstName: 'Ann' }, fields: { lastName: '' } },
  { name: 'unlisted fields are absent', yaml: '', attributes: { FirstName: 'Ann', mail: 'a@example.com' }, absent: ['email', 'lastName', 'mobile', 'role', 'department', 'dids', 'vmPin', 'vmEnabled', 'enabled', 'options', 'phones', 'require2fa'] },
  { name: 'first name required', yaml: '', attributes: { FirstName: ' ' }, issue: { field: 'FirstName', message: /^first name is required$/ } },
  { name: 'invalid e-mail (seed sample email@)', yaml: '  email: EmailAddress\n', attributes: { FirstName: 'Ann', EmailAddress: 'email@' }, issue: { field: 'EmailAddress', message: /not a valid e-mail/ } },
  { name: 'invalid e-mail without dot', yaml: '  email: EmailAddress\n', attributes: { FirstName: 'Ann', EmailAddress: 'ann@localhost' }, issue: { field: 'EmailAddress', message: /not a valid e-mail/ } },
  { name: 'invalid e-mail with space', yaml: '  email: EmailAddress\n', attributes: { FirstName: 'Ann', EmailAddress: 'ann lee@example.com' }, issue: { field: 'EmailAddress', message: /not a valid e-mail/ } },
  { name: 'mobile to E.164 with default region', yaml: '  mobile: MobileNumber\n', attributes: { FirstName: 'Ann', MobileNumber: '(201) 555-0123' }, fields: { mobile: '+12015550123' } },
  { name: 'mobile with another default region', yaml: '  mobile: MobileNumber\ndefaultRegion: GB\n', attributes: { FirstName: 'Ann', MobileNumber: '07911 123456' }, fields: { mobile: '+447911123456' } },
  { name: 'outbound caller ID to E.164', yaml: '  outboundCallerId: OutboundCallerID\n', attributes: { FirstName: 'Ann', OutboundCallerID: '+44 20 7946 0958' }, fields: { outboundCallerId: '+442079460958' } },
  { name: 'unreadable mobile', yaml: '  mobile: MobileNumber\n', attributes: { FirstName: 'Ann', MobileNumber: '555-0100' }, issue: { field: 'MobileNumber', message: /not a valid phone number/ } },
  { name: 'DIDs split, normalised, sorted, unique', yaml: 'dids: DID\n', attributes: { FirstName: 'Ann', DID: '+1 201 555 0124; (201) 555-0123, +12015550124' }, fields: { dids: ['+12015550123', '+12015550124'] } },
  { name: 'DIDs from several multi-valued attributes', yaml: 'dids: { from: [telephoneNumber, otherTelephone] }\n', attributes: { FirstName: 'Ann', telephoneNumber: '+12015550125', otherTelephone: ['+12015550123', '+12015550124'] }, fields: { dids: ['+12015550123', '+12015550124', '+12015550125'] } },
  { name: 'DIDs from an expression', yaml: "dids: { expr: \"phones[type='work'].value\" }\n", attributes: { FirstName: 'Ann', phones: [{ type: 'work', value: '+12015550123' }, { type: 'mobile', value: '+12015550199' }] }, fields: { dids: ['+12015550123'] } },
  { name: 'empty DIDs clear the list', yaml: 'dids: DID\n', attributes: { FirstName: 'Ann', DID: '' }, fields: { dids: [] } },
  { name: 'invalid DID', yaml: 'dids: DID\n', attributes: { FirstName: 'Ann', DID: '+12015550123;12' }, issue: { field: 'DID', message: /"12" is not a valid phone number/ } },
  { name: 'VM PIN kept', yaml: 'voicemail: { pin: VMPIN }\n', attributes: { FirstName: 'Ann', VMPIN: '731826' }, fields: { vmPin: '731826' } },
  { name: 'VM PIN too short', yaml: 'voicemail: { pin: VMPIN }\n', attributes: { FirstName: 'Ann', VMPIN: '123' }, issue: { field: 'VMPIN', message: /^VM PIN must be at least 4 digits$/ } },
  { name: 'VM PIN not digits', yaml: 'voicemail: { pin: VMPIN }\n', attributes: { FirstName: 'Ann', VMPIN: '12a45' }, issue: { field: 'VMPIN', message: /digits only/ } },
  { name: 'VM PIN missing: absent, not null', yaml: 'voicemail: { pin: VMPIN }\n', attributes: { FirstName: 'Ann', VMPIN: '' }, absent: ['vmPin'] },
  { name: 'flags from CSV text', yaml: 'voicemail: { enabled: VMEnable }\nrecordCalls: RecordCalls\nhideInPhonebook: { from: Hide }\nrequire2fa: false\n', attributes: { FirstName: 'Ann', VMEnable: '1', RecordCalls: 'yes', Hide: 'FALSE' }, fields: { vmEnabled: true, recordCalls: true, hideInPhonebook: false, require2fa: false } },
  { name: 'enabled from Disabled, negated', yaml: 'enabled: { from: Disabled, negate: true }\n', attributes: { FirstName: 'Ann', Disabled: '1' }, fields: { enabled: false } },
  { name: 'empty Disabled means enabled', yaml: 'enabled: { from: Disabled, negate: true }\n', attributes: { FirstName: 'Ann', Disabled: '' }, fields: { enabled: true } },
  { name: 'default null: an empty Disabled sets nothing', yaml: 'enabled: { from: Disabled, negate: true, default: null }\n', attributes: { FirstName: 'Ann', Disabled: '' }, fields: { firstName: 'Ann' }, absent: ['enabled'] },
  { name: 'default null: no Disabled column sets nothing', yaml: 'enabled: { from: Disabled, negate: true, default: null }\n', attributes: { FirstName: 'Ann' }, fields: { firstName: 'Ann' }, absent: ['enabled'] },
  { name: 'default null: Disabled 0 enables', yaml: 'enabled: { from: Disabled, negate: true, default: null }\n', attributes: { FirstName: 'Ann', Disabled: '0' }, fields: { enabled: true } },
  { name: 'flag default when empty', yaml: 'voicemail: { enabled: { from: VMEnable, default: true } }\n', attributes: { FirstName: 'Ann' }, fields: { vmEnabled: true } },
  { name: 'flag from a boolean attribute', yaml: 'enabled: accountEnabled\n', attributes: { FirstName: 'Ann', accountEnabled: false }, fields: { enabled: false } },
  { name: 'flag from an expression', yaml: "recordCalls: { expr: \"'Recorded' in groups\" }\n", attributes: { FirstName: 'Ann' }, groups: ['Recorded'], fields: { recordCalls: true } },
  { name: 'unreadable flag', yaml: 'recordCalls: RecordCalls\n', attributes: { FirstName: 'Ann', RecordCalls: 'maybe' }, issue: { field: 'RecordCalls', message: /not a yes\/no value/ } },
  { name: 'options: non-empty values as-is', yaml: 'options: [Ringtone, AllowLanOnly, PinTimeout]\n', attributes: { FirstName: 'Ann', Ringtone: 'Ring 3', AllowLanOnly: '1', PinTimeout: '' }, fields: { options: { Ringtone: 'Ring 3', AllowLanOnly: '1' } } },
  { name: 'phones: MAC normalised, sorted', yaml: 'phones:\n  - { mac: MAC2 }\n  - { mac: MAC, model: Model, template: Template }\n', attributes: { FirstName: 'Ann', MAC: '00:15:65:AA:BB:CC', Model: 'Yealink T46U', Template: 'yealinkT4x.ph.xml', MAC2: '0004.f2aa.bbcc' }, fields: { phones: [{ mac: '0004f2aabbcc' }, { mac: '001565aabbcc', model: 'Yealink T46U', template: 'yealinkT4x.ph.xml' }] } },
  { name: 'phones: empty MAC means no phone', yaml: 'phones:\n  - { mac: MAC, model: Model }\n', attributes: { FirstName: 'Ann', MAC: '', Model: 'Yealink T46U' }, fields: { phones: [] } },
  { name: 'phones: invalid MAC', yaml: 'phones:\n  - { mac: MAC }\n', attributes: { FirstName: 'Ann', MAC: '00:15:65:AA:BB' }, issue: { field: 'MAC', message: /not a MAC address/ } },
  { name: 'expression that fails at runtime', yaml: "  displayName: { expr: \"$error('boom')\" }\n", attributes: { FirstName: 'Ann' }, issue: { field: 'displayName', message: /expression failed: boom/ } },
];

for (const row of rows) {
  test(`fields: ${row.name}`, async (t) => {
    const [fieldsPart, rest] = splitYaml(row.yaml);
    const result = await mapWith(`${BASE}${fieldsPart}${rest}`, { attributes: row.attributes, groups: row.groups ?? [] });
    if (row.issue) {
      t.is(result.kind, 'invalid');
      const issues = issuesOf(result);
      t.true(
        issues.some((i) => i.field === row.issue!.field && row.issue!.message.test(i.message)),
        JSON.stringify(issues),
      );
      return;
    }
    const user = userOf(result);
    for (const [k, v] of Object.entries(row.fields ?? {})) t.deepEqual(user.fields[k as keyof UserFields], v, k);
    for (const k of row.absent ?? []) t.false(k in user.fields, `${k} should be absent`);
  });
}

/** Lines indented under `fields:` go there; the rest are top-level sections. */
function splitYaml(yaml: string): [string, string] {
  const lines = yaml.split('\n');
  const cut = lines.findIndex((l) => l !== '' && !l.startsWith('  '));
  return cut < 0 ? [yaml, ''] : [lines.slice(0, cut).join('\n') + (cut > 0 ? '\n' : ''), lines.slice(cut).join('\n')];
}

test('fields: a record issue names source, file, line, field and record', async (t) => {
  const result = await compile(`${BASE}  email: EmailAddress\n`).map(identity({ attributes: { FirstName: 'Ann', EmailAddress: 'email@' } }));
  t.deepEqual(issuesOf(result), [
    { source: 'hr', file: 'in.csv', line: 7, field: 'EmailAddress', record: 'a-1', message: '"email@" is not a valid e-mail address' },
  ]);
});

test('fields: every problem of a record is reported, not only the first', async (t) => {
  const result = await mapWith(`${BASE}  email: EmailAddress\nvoicemail: { pin: VMPIN }\n`, { attributes: { FirstName: '', EmailAddress: 'x@', VMPIN: '1' } });
  t.deepEqual(issuesOf(result).map((i) => i.field).sort(), ['EmailAddress', 'FirstName', 'VMPIN']);
});

test('fields: the VM PIN is masked in decisions and never in an issue', async (t) => {
  const ok = userOf(await mapWith(`${BASE}voicemail: { pin: VMPIN }\n`, { attributes: { FirstName: 'Ann', VMPIN: '731826' } }));
  const decision = ok.reasons.find((d) => d.field === 'vmPin');
  t.is(decision?.value, '***');
  t.false(JSON.stringify(ok.reasons).includes('731826'));
  const bad = await mapWith(`${BASE}voicemail: { pin: VMPIN }\n`, { attributes: { FirstName: 'Ann', VMPIN: '98x' } });
  t.false(JSON.stringify(bad).includes('98x'));
});

test('fields: every decision names its rule as file#path', async (t) => {
  const user = userOf(await mapWith(`${BASE}  email: mail\nrecordCalls: true\n`, { attributes: { FirstName: 'Ann', mail: 'a@example.com' } }));
  t.deepEqual(
    user.reasons.map((d) => [d.field, d.rule]),
    [
      ['scope', 'test.yml#scope'],
      ['firstName', 'test.yml#fields.firstName'],
      ['email', 'test.yml#fields.email'],
      ['recordCalls', 'test.yml#recordCalls'],
      ['extension', 'test.yml#extension'],
    ],
  );
});

test('fields: removal, adopt and welcome', async (t) => {
  const defaults = compile(BASE);
  t.deepEqual(defaults.removal, { action: 'disable', graceDays: 30 });
  const d = userOf(await defaults.map(identity()));
  t.deepEqual([d.adopt, d.sendWelcome, d.createDepartments], [[], true, false]);

  const custom = compile(`${BASE}removal: { action: delete }\nadopt: [email, extension]\nwelcome: false\n`);
  t.deepEqual(custom.removal, { action: 'delete', graceDays: 30 });
  const c = userOf(await custom.map(identity({ disabled: true })));
  t.deepEqual([c.adopt, c.sendWelcome, c.disabledInSource], [['email', 'extension'], false, true]);
  t.deepEqual(compile(`${BASE}removal: { action: keep, graceDays: 0 }\n`).removal, { action: 'keep', graceDays: 0 });
});

test('fields: key and origin come from the identity', async (t) => {
  const user = userOf(await mapWith(BASE, { source: 'ad', anchor: 'guid-1', origin: { dn: 'CN=x' } }));
  t.deepEqual(user.key, { source: 'ad', anchor: 'guid-1' });
  t.deepEqual(user.origin, { dn: 'CN=x' });
});

test('a mapping maps synchronously unless a JSONata expression has to run; both give the same user', async (t) => {
  const plain = compile(`${BASE}  lastName: LastName\n`);
  const withExpr = compile(`${BASE}  lastName: { expr: "LastName" }\n`);
  const direct = plain.map(identity());
  t.false(direct instanceof Promise, 'no expression: the result itself');
  const deferred = withExpr.map(identity());
  t.true(deferred instanceof Promise, 'an expression: a promise');
  t.deepEqual(userOf(await deferred).fields, userOf(direct as MappingResult).fields);
  t.is(userOf(direct as MappingResult).fields.lastName, 'Lee');
  // A deleted identity needs no expression either.
  t.false(withExpr.map(identity({ deleted: true })) instanceof Promise);
});
