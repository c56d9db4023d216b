import test from 'ava';
import {
  canonicalOptions,
  fromXapiUser,
  normalizeDid,
  normalizeEmail,
  normalizeMac,
  normalizePhone,
  optionsFromXapi,
  optionsToXapi,
  toXapiFields,
  toXapiGroups,
  toXapiPhones,
} from '../../../src/targets/threecx/normalize.js';
import type { XapiUser } from '../../../src/targets/threecx/types.js';
import type { RoleName } from '../../../src/model/index.js';

const groupNames = new Map([
  [10, 'DEFAULT'],
  [20, 'Sales'],
  [21, 'Support'],
  [22, 'Accounting'],
]);

/** A user as 3CX sends it with `$expand=Groups($expand=Rights),Phones`: empty strings, upper-case MAC, shuffled groups. */
const raw: XapiUser = {
  Id: 42,
  Number: '200',
  FirstName: 'Amanda',
  LastName: 'Camden',
  DisplayName: '',
  EmailAddress: ' Amanda.Camden@Example.COM ',
  Mobile: '0049 171 234-5678',
  OutboundCallerID: '',
  Language: '',
  Enabled: true,
  Require2FA: false,
  VMEnabled: true,
  VMPIN: '123456',
  HideInPhonebook: false,
  RecordCalls: true,
  PrimaryGroupId: 20,
  Groups: [
    { GroupId: 22, Rights: { RoleName: 'users' } },
    { GroupId: 20, Rights: { RoleName: 'managers' } },
    { GroupId: 21, Rights: { RoleName: 'users' } },
  ],
  Phones: [
    { MacAddress: '00:15:65:BB:CC:DD', TemplateName: 'yealinkT4x.ph.xml', Name: 'Yealink T46U', Id: 5 },
    { MacAddress: '0004F2AABBCC', TemplateName: 'polycom.ph.xml', Name: '' },
  ],
  CallScreening: false,
  AllowLanOnly: true,
  SIPID: '',
};

test('fromXapiUser folds what 3CX fills in into canonical form', (t) => {
  const u = fromXapiUser(raw, { groupNames, dids: ['493012345600', '+49 30 12345601', '+493012345600'] });
  t.deepEqual(
    { ...u, options: undefined },
    {
      id: '42',
      extension: '200',
      firstName: 'Amanda',
      lastName: 'Camden',
      displayName: null,
      email: 'amanda.camden@example.com',
      mobile: '+491712345678',
      outboundCallerId: null,
      language: null,
      department: 'Sales',
      extraDepartments: ['Accounting', 'Support'],
      role: 'managers',
      dids: ['+493012345600', '+493012345601'],
      vmEnabled: true,
      vmPin: '123456',
      require2fa: false,
      hideInPhonebook: false,
      recordCalls: true,
      phones: [
        { mac: '0004f2aabbcc', template: 'polycom.ph.xml' },
        { mac: '001565bbccdd', model: 'Yealink T46U', template: 'yealinkT4x.ph.xml' },
      ],
      enabled: true,
      options: undefined,
    },
  );
  t.is(u.options.AllowLanOnly, '1');
  t.is(u.options.CallScreening, '0');
  t.is(u.options.SIPID, '');
  t.false('PinProtect' in u.options, 'options absent from the response are not invented');
});

test('fromXapiUser: order of memberships and phones does not matter', (t) => {
  const shuffled: XapiUser = { ...raw, Groups: [...raw.Groups!].reverse(), Phones: [...raw.Phones!].reverse() };
  t.deepEqual(fromXapiUser(shuffled, { groupNames }), fromXapiUser(raw, { groupNames }));
});

const departmentCases: Array<[title: string, user: Partial<XapiUser>, department: string, extra: string[], role: RoleName]> = [
  ['no memberships at all → DEFAULT, users', { PrimaryGroupId: null, Groups: [] }, 'DEFAULT', [], 'users'],
  ['no PrimaryGroupId → first membership', { PrimaryGroupId: null, Groups: [{ GroupId: 21, Rights: { RoleName: 'group_admins' } }] }, 'Support', [], 'group_admins'],
  ['role missing on the main membership → users', { PrimaryGroupId: 20, Groups: [{ GroupId: 20 }] }, 'Sales', [], 'users'],
  ['unknown group id falls back to UserGroup.Name', { PrimaryGroupId: 99, Groups: [{ GroupId: 99, Name: 'Lab', Rights: { RoleName: 'users' } }] }, 'Lab', [], 'users'],
  ['role read from the main group, not the others', { PrimaryGroupId: 21, Groups: [{ GroupId: 20, Rights: { RoleName: 'system_owners' } }, { GroupId: 21, Rights: { RoleName: 'receptionists' } }] }, 'Support', ['Sales'], 'receptionists'],
];
for (const [title, patch, department, extra, role] of departmentCases) {
  test(`fromXapiUser departments: ${title}`, (t) => {
    const u = fromXapiUser({ ...raw, ...patch } as XapiUser, { groupNames });
    t.is(u.department, department);
    t.deepEqual(u.extraDepartments, extra);
    t.is(u.role, role);
  });
}

const scalarCases: Array<[title: string, fn: (v: unknown) => unknown, input: unknown, expected: unknown]> = [
  ['email "" → null', normalizeEmail, '', null],
  ['email null → null', normalizeEmail, null, null],
  ['email lower-cased and trimmed', normalizeEmail, ' A@B.C ', 'a@b.c'],
  ['MAC with colons', normalizeMac, '00:15:65:AA:BB:CC', '001565aabbcc'],
  ['MAC with dashes', normalizeMac, '00-15-65-aa-bb-cc', '001565aabbcc'],
  ['MAC Cisco dots', normalizeMac, '0015.65aa.bbcc', '001565aabbcc'],
  ['MAC not 12 hex kept (lower)', normalizeMac, 'XYZ', 'xyz'],
  ['phone "" → null', normalizePhone, '', null],
  ['phone 00 prefix → +', normalizePhone, '0049 30 1234', '+49301234'],
  ['phone formatting removed', normalizePhone, '+1 (555) 123-4567', '+15551234567'],
  ['phone national kept', normalizePhone, '030 1234567', '0301234567'],
  ['DID stored without + → E.164', normalizeDid, '493012345600', '+493012345600'],
  ['DID already E.164', normalizeDid, '+493012345600', '+493012345600'],
  ['DID short form kept', normalizeDid, '600', '600'],
  ['DID national kept', normalizeDid, '03012345600', '03012345600'],
];
for (const [title, fn, input, expected] of scalarCases) {
  test(`normalise: ${title}`, (t) => t.deepEqual(fn(input), expected));
}

const toCases: Array<[title: string, changes: Parameters<typeof toXapiFields>[0], expected: Record<string, unknown>]> = [
  ['rename sends only names', { firstName: 'Amy', lastName: 'Camden-Smith' }, { FirstName: 'Amy', LastName: 'Camden-Smith' }],
  ['email lower-cased; null → ""', { email: 'A@B.C', mobile: null }, { EmailAddress: 'a@b.c', Mobile: '' }],
  ['flags', { enabled: false, require2fa: true, vmEnabled: false, hideInPhonebook: true, recordCalls: false }, { Enabled: false, Require2FA: true, VMEnabled: false, HideInPhonebook: true, RecordCalls: false }],
  ['null PIN is not sent', { vmPin: null }, {}],
  ['PIN sent', { vmPin: '4321' }, { VMPIN: '4321' }],
  ['display name, caller id, language', { displayName: null, outboundCallerId: '+4930123', language: 'DE' }, { DisplayName: '', OutboundCallerID: '+4930123', Language: 'DE' }],
  ['groups/phones/dids are not scalars', { department: 'Sales', role: 'managers', phones: [], dids: [] }, {}],
  ['options through the CSV table', { options: { AllowLanOnly: '0', PinProtect: '1', ClickToCallFriendlyName: 'amanda', VMEmailOptions: 'attachment', Ringtone: 'x', CallScreening: 'maybe' } }, { AllowLanOnly: false, PinProtected: true, ClickToCallId: 'amanda', VMEmailOptions: 'Attachment' }],
];
for (const [title, changes, expected] of toCases) {
  test(`toXapiFields: ${title}`, (t) => t.deepEqual(toXapiFields(changes), expected));
}

test('options survive a round trip through XAPI properties', (t) => {
  const options = { CallScreening: '1', AllowLanOnly: '0', SIPID: 'amanda', VMPlayMsgDateTime: 'Play24Hr' };
  const back = optionsFromXapi(optionsToXapi(options));
  t.deepEqual(back, options);
});

test('canonicalOptions: V20 CSV columns in the form 3CX reads them back; columns and values 3CX cannot store are left out', (t) => {
  const csv = {
    ClickToCallId: ' namesurname ',
    WMApprove: '0',
    VMEmailOptions: '1',
    VMPlayMsgDateTime: '2',
    VMNoPin: 'yes',
    PinProtected: '1',
    PinTimeout: '05',
    MS365SignInDisabled: '1',
    GoogleSignInDisabled: '0',
    CallScreening: 'maybe',
    VMLanguage: '43E89581-DAD8-B6F4-7660-15D48B5E6026',
    ClickToCallAuth: '0',
    Ringtone: 'Ring1.wav',
  };
  const canonical = canonicalOptions(csv);
  t.deepEqual(canonical, {
    ClickToCallId: 'namesurname',
    WMApprove: '0',
    VMEmailOptions: 'Notification',
    VMPlayMsgDateTime: 'Play24Hr',
    VMNoPin: '1',
    PinProtected: '1',
    PinTimeout: '5',
    MS365SignInDisabled: '1',
    GoogleSignInDisabled: '0',
  });
  const written = optionsToXapi(csv);
  t.like(written, { VMEmailOptions: 'Notification', VMPlayMsgDateTime: 'Play24Hr', PinProtectTimeout: 5, MS365SignInEnabled: false, GoogleSignInEnabled: true });
  // What 3CX then holds reads back exactly as the canonical form: the diff sees no change.
  const back = optionsFromXapi(written);
  for (const [k, v] of Object.entries(canonical)) t.is(back[k], v, k);
});

test('toXapiGroups: main first, extras sorted, role on every membership, main never repeated', (t) => {
  const ids: Record<string, number> = { Sales: 20, Support: 21, Accounting: 22 };
  t.deepEqual(toXapiGroups('Sales', ['Support', 'Sales', 'Accounting'], 'managers', (n) => ids[n]!), [
    { GroupId: 20, Rights: { RoleName: 'managers' } },
    { GroupId: 22, Rights: { RoleName: 'managers' } },
    { GroupId: 21, Rights: { RoleName: 'managers' } },
  ]);
});

test('toXapiPhones keeps a staying phone as 3CX has it and adds new ones bare', (t) => {
  const current = [{ Id: 5, MacAddress: '001565bbccdd', TemplateName: 'old.xml', Name: 'Old', Settings: { Secret: 's' } }];
  t.deepEqual(
    toXapiPhones(
      [
        { mac: 'AA:BB:CC:DD:EE:FF', model: 'Snom D785', template: 'snom.ph.xml' },
        { mac: '00:15:65:BB:CC:DD', template: 'yealinkT4x.ph.xml' },
      ],
      current,
    ),
    [
      { Id: 5, MacAddress: '001565bbccdd', TemplateName: 'yealinkT4x.ph.xml', Name: 'Old', Settings: { Secret: 's' } },
      { MacAddress: 'aabbccddeeff', TemplateName: 'snom.ph.xml', Name: 'Snom D785' },
    ],
  );
});
