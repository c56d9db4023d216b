import https from 'node:https';
import test from 'ava';
import axios, { type AxiosInstance } from 'axios';
import { createTestCa } from '../../helpers/tls.js';
import { startFakeXapi, type FakeXapi, type FakeXapiOptions } from './server.js';

const ca = createTestCa();

interface Ctx {
  fake: FakeXapi;
  /** Unauthenticated client (validateStatus: any). */
  raw: AxiosInstance;
  /** Client with a bearer token, base /xapi/v1. */
  api: AxiosInstance;
}

async function setup(opts: FakeXapiOptions = {}): Promise<Ctx> {
  const fake = await startFakeXapi({ tls: ca.issue(), ...opts });
  const agent = new https.Agent({ ca: ca.caPem });
  const raw = axios.create({ baseURL: fake.url, httpsAgent: agent, validateStatus: () => true });
  const tok = await raw.post(
    '/connect/token',
    new URLSearchParams({ client_id: fake.clientId, client_secret: fake.clientSecret, grant_type: 'client_credentials' }),
  );
  const api = axios.create({
    baseURL: `${fake.url}/xapi/v1`,
    httpsAgent: agent,
    validateStatus: () => true,
    headers: { Authorization: `Bearer ${tok.data.access_token as string}` },
  });
  return { fake, raw, api };
}

function detail(data: unknown): Array<{ target: string; message: string }> {
  return (data as { error: { details: Array<{ target: string; message: string }> } }).error.details;
}

// ----- auth ----------------------------------------------------------------------------------

test('token: form and multipart; bad credentials; a new token revokes the old one', async (t) => {
  const { fake, raw, api } = await setup();
  t.teardown(() => fake.close());

  const bad = await raw.post('/connect/token', new URLSearchParams({ client_id: fake.clientId, client_secret: 'nope', grant_type: 'client_credentials' }));
  t.is(bad.status, 401);
  t.deepEqual(bad.data, { error: 'unauthorized', error_description: 'The request requires valid user authentication.' });

  t.is((await api.get('/Users')).status, 200);

  const form = new FormData();
  form.append('client_id', fake.clientId);
  form.append('client_secret', fake.clientSecret);
  form.append('grant_type', 'client_credentials');
  const second = await raw.post('/connect/token', form);
  t.is(second.status, 200);
  t.is(second.data.token_type, 'Bearer');
  t.is(second.data.expires_in, 3600);
  t.is(second.data.refresh_token, null);

  // The first token is now revoked.
  const old = await api.get('/Users');
  t.is(old.status, 401);
  t.is(old.headers['www-authenticate'], 'Bearer error="invalid_token"');
  const fresh = await raw.get('/xapi/v1/Users', { headers: { Authorization: `Bearer ${second.data.access_token as string}` } });
  t.is(fresh.status, 200);
});

test('token: legacy expires_in in minutes; expired and revoked tokens get 401', async (t) => {
  const { fake, raw, api } = await setup({ legacyExpiresInMinutes: true, tokenLifetimeSeconds: 1 });
  t.teardown(() => fake.close());
  const tok = await raw.post('/connect/token', `client_id=${fake.clientId}&client_secret=${fake.clientSecret}&grant_type=client_credentials`, {
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
  });
  t.is(tok.data.expires_in, 0); // 1 s rounds to 0 minutes; a real legacy PBX says 60
  t.is((await api.get('/Users')).status, 401); // superseded by the token above
  const { fake: f2, api: api2 } = await setup({ legacyExpiresInMinutes: true });
  t.teardown(() => f2.close());
  t.is((await api2.get('/Users')).status, 200);
  f2.faults.revokeTokens();
  t.is((await api2.get('/Users')).status, 401);
});

test('every /xapi/v1 call without a bearer gets 401', async (t) => {
  const { fake, raw } = await setup();
  t.teardown(() => fake.close());
  for (const [m, p] of [
    ['get', '/xapi/v1/Users'],
    ['post', '/xapi/v1/Users'],
    ['get', '/xapi/v1/Groups'],
    ['post', '/xapi/v1/Defs/Pbx.GetRoutes'],
  ] as const) {
    const r = await raw.request({ method: m, url: p, data: {} });
    t.is(r.status, 401, `${m} ${p}`);
  }
  const wrong = await raw.get('/xapi/v1/Users', { headers: { Authorization: 'Bearer nope' } });
  t.is(wrong.status, 401);
});

// ----- OData ---------------------------------------------------------------------------------

test('paging with $top/$skip/$count, $orderby, $filter, $search', async (t) => {
  const { fake, api } = await setup();
  t.teardown(() => fake.close());
  fake.seedUsers(25);
  const page = await api.get('/Users', { params: { $top: 10, $skip: 20, $count: true, $orderby: 'Number', $select: 'Id,Number' } });
  t.is(page.status, 200);
  t.is(page.data['@odata.count'], 25);
  t.is(page.data['@odata.context'], `${fake.url}/xapi/v1/$metadata#Users(Id,Number)`);
  // Auto numbering skips the emergency number 112, so 25 users are 100–111 and 113–125.
  t.deepEqual(
    page.data.value.map((u: { Number: string }) => u.Number),
    ['121', '122', '123', '124', '125'],
  );
  t.deepEqual(Object.keys(page.data.value[0]), ['Id', 'Number']);

  const desc = await api.get('/Users', { params: { $top: 2, $orderby: 'Number desc', $select: 'Number' } });
  t.deepEqual(desc.data.value, [{ Number: '125' }, { Number: '124' }]);

  const f = await api.get('/Users', { params: { $filter: "Number ge '110' and Number lt '113' and EmailAddress ne null", $select: 'Number' } });
  t.deepEqual(f.data.value, [{ Number: '110' }, { Number: '111' }]);
  t.false('@odata.count' in f.data);

  const s = await api.get('/Users', { params: { $search: 'seed7.', $select: 'Number' } });
  t.deepEqual(s.data.value, [{ Number: '106' }]);

  const bad = await api.get('/Users', { params: { $filter: 'Number eq 100' } });
  t.is(bad.status, 400);
  const unknownProp = await api.get('/Users', { params: { $select: 'MobileNumber' } });
  t.is(unknownProp.status, 400);
  t.regex(unknownProp.data.error.message, /MobileNumber/);
});

test('pageCap cuts pages server-side', async (t) => {
  const { fake, api } = await setup({ pageCap: 7 });
  t.teardown(() => fake.close());
  fake.seedUsers(10);
  t.is((await api.get('/Users')).data.value.length, 7);
  t.is((await api.get('/Users', { params: { $top: 100 } })).data.value.length, 7);
  t.is((await api.get('/Users', { params: { $top: 3 } })).data.value.length, 3);
});

test('navigation properties only with $expand; nested $expand for Rights', async (t) => {
  const { fake, api } = await setup();
  t.teardown(() => fake.close());
  const u = fake.seedUser({ FirstName: 'Ann', LastName: 'Lee', Phones: [{ MacAddress: '001565AABBCC', TemplateName: 'yealinkT4x.ph.xml' }] });

  const plain = await api.get(`/Users(${u.Id})`);
  t.is(plain.status, 200);
  t.is(plain.data.FirstName, 'Ann');
  for (const nav of ['Groups', 'Phones', 'ForwardingProfiles', 'Greetings']) t.false(nav in plain.data, nav);

  const g = await api.get(`/Users(${u.Id})`, { params: { $expand: 'Groups,Phones', $select: 'Id' } });
  t.deepEqual(Object.keys(g.data).sort(), ['@odata.context', 'Groups', 'Id', 'Phones']);
  t.is(g.data.Groups[0].GroupId, fake.state.defaultGroupId);
  t.false('Rights' in g.data.Groups[0]);
  t.is(g.data.Phones[0].MacAddress, '001565aabbcc');

  const r = await api.get(`/Users(${u.Id})`, { params: { $expand: 'Groups($expand=Rights)' } });
  t.is(r.data.Groups[0].Rights.RoleName, 'users');

  const byNumber = await api.get(`/Users(Number='${u.Number}')`, { params: { $select: 'Id' } });
  t.is(byNumber.data.Id, u.Id);
  const missing = await api.get("/Users(Number='4711')");
  t.is(missing.status, 404);
  t.is(detail(missing.data)[0]!.message, 'WARNINGS.XAPI.NOT_FOUND');
  t.is((await api.get('/Users(99999)')).status, 404);
});

// ----- users ---------------------------------------------------------------------------------

test('create: 201 with server defaults; {} gets an auto number', async (t) => {
  const { fake, api } = await setup();
  t.teardown(() => fake.close());
  const r = await api.post('/Users', { Id: 0, FirstName: 'Ann', LastName: 'Lee', EmailAddress: 'ann@example.test' });
  t.is(r.status, 201);
  t.is(r.data.Number, '100');
  t.true(r.data.Enabled);
  t.true(r.data.VMEnabled);
  t.regex(r.data.VMPIN, /^\d{6}$/);
  t.is(r.data.Require2FA, false);
  t.is(r.data.PrimaryGroupId, fake.state.defaultGroupId);
  t.is(r.data.DisplayName, 'Ann Lee');
  t.truthy(r.data.AuthID);
  t.not(r.data.Id, 0);
  const stored = fake.state.users.get(r.data.Id)!;
  t.deepEqual(stored.Groups.map((m) => [m.GroupId, m.Rights.RoleName]), [[fake.state.defaultGroupId, 'users']]);

  const empty = await api.post('/Users', {});
  t.is(empty.status, 201);
  t.is(empty.data.Number, '101');
  const next = await api.get('/Users/Pbx.GetFirstAvailableExtensionNumber()');
  t.is(next.data.Number, '102');
});

test('create: validation errors use the 3CX envelope', async (t) => {
  const { fake, api } = await setup({ maxPhonesPerUser: 2 });
  t.teardown(() => fake.close());
  const ann = fake.seedUser({ Number: '100', EmailAddress: 'ann@example.test', Phones: [{ MacAddress: '001565aabbcc', TemplateName: 'yealinkT4x.ph.xml' }] });
  t.truthy(ann);

  const cases: Array<[Record<string, unknown>, string, string]> = [
    [{ Number: '100' }, 'Number', 'WARNINGS.XAPI.ALREADY_IN_USE'],
    [{ EmailAddress: 'ANN@example.test' }, 'EmailAddress', 'WARNINGS.XAPI.ALREADY_IN_USE'],
    [{ Number: '911' }, 'Number', 'WARNINGS.XAPI.ALREADY_IN_USE'],
    [{ Number: '112' }, 'Number', 'WARNINGS.XAPI.ALREADY_IN_USE'],
    [{ VMPIN: '12' }, 'VMPIN', 'WARNINGS.XAPI.INVALID_PIN_NUMBER'],
    [{ VMPIN: '12ab' }, 'VMPIN', 'WARNINGS.XAPI.INVALID_PIN_NUMBER'],
    [{ Groups: [{ GroupId: 424242, Rights: { RoleName: 'users' } }] }, 'Groups', 'WARNINGS.XAPI.NOT_FOUND'],
    [{ Groups: [{ GroupId: fake.state.defaultGroupId, Rights: { RoleName: 'superuser' } }] }, 'RoleName', 'WARNINGS.XAPI.NOT_FOUND'],
    [{ Phones: [{ MacAddress: '001565AABBCC', TemplateName: 'yealinkT4x.ph.xml' }] }, 'Phones', 'WARNINGS.XAPI.MAC_USED_BY'],
    [{ Phones: [{ MacAddress: '00:15:65:aa:bb:cd', TemplateName: 'yealinkT4x.ph.xml' }] }, 'Phones', 'WARNINGS.INVALID_HEX_CHARACTER'],
    [{ Phones: [{ MacAddress: '00156500000g', TemplateName: 'yealinkT4x.ph.xml' }] }, 'Phones', 'WARNINGS.INVALID_HEX_CHARACTER'],
    [
      { Phones: ['001565000001', '001565000002', '001565000003'].map((MacAddress) => ({ MacAddress, TemplateName: 'fanvil.ph.xml' })) },
      'Phones',
      'WARNINGS.XAPI.TOO_MANY_PHONES',
    ],
    [{ FirstName: 'x'.repeat(51) }, 'FirstName', 'WARNINGS.LENGTH_NOT_MORE_50_CHARS'],
    [{ LastName: 'y'.repeat(51) }, 'LastName', 'WARNINGS.LENGTH_NOT_MORE_50_CHARS'],
  ];
  for (const [body, target, code] of cases) {
    const r = await api.post('/Users', body);
    t.is(r.status, 400, JSON.stringify(body));
    t.deepEqual(r.data, { error: { code: '', message: `${target}:\n${code}`, details: [{ code: '', message: code, target }] } }, JSON.stringify(body));
  }

  const unknown = await api.post('/Users', { MobileNumber: '+4930' });
  t.is(unknown.status, 400);
  t.regex(unknown.data.error.message, /'MobileNumber' does not exist on type 'Pbx.User'/);
  const wrongType = await api.post('/Users', { Enabled: 'true' });
  t.is(wrongType.status, 400);

  // Several problems are reported together.
  const multi = await api.post('/Users', { Number: '100', VMPIN: '1' });
  t.deepEqual(detail(multi.data).map((d) => d.target), ['Number', 'VMPIN']);
  t.is(fake.state.users.size, 1);
});

test('uniqueEmail: false allows duplicate emails; HasDuplicatedEmail reports them', async (t) => {
  const { fake, api } = await setup({ uniqueEmail: false });
  t.teardown(() => fake.close());
  const a = await api.post('/Users', { EmailAddress: 'x@example.test' });
  const b = await api.post('/Users', { EmailAddress: 'X@example.test' });
  t.is(b.status, 201);
  const dup = await api.get(`/Users(${a.data.Id as number})/Pbx.HasDuplicatedEmail()`);
  t.is(dup.data.value, true);
  const emails = await api.post('/Users/Pbx.GetDuplicatedEmails', { emails: ['x@example.test', 'free@example.test'] });
  t.deepEqual(emails.data.value, ['x@example.test']);
});

test('patch: 204, partial, immutable Number, Id ignored, Groups/Phones replace', async (t) => {
  const { fake, api } = await setup();
  t.teardown(() => fake.close());
  const sales = fake.seedGroup('Sales');
  const support = fake.seedGroup('Support');
  const u = fake.seedUser({ FirstName: 'Ann', LastName: 'Lee' });

  const p = await api.patch(`/Users(${u.Id})`, { Id: u.Id, Number: u.Number, LastName: 'Long', Mobile: '+49301234' });
  t.is(p.status, 204);
  t.is(p.data, '');
  const stored = fake.state.users.get(u.Id)!;
  t.is(stored.LastName, 'Long');
  t.is(stored.FirstName, 'Ann');
  t.is(stored.DisplayName, 'Ann Long');

  const num = await api.patch(`/Users(${u.Id})`, { Number: '555' });
  t.is(num.status, 400);
  t.deepEqual(detail(num.data), [{ code: '', message: 'WARNINGS.XAPI.FORBIDDEN_CHANGE', target: 'Number' }]);
  t.is(fake.state.users.get(u.Id)!.Number, u.Number);

  await api.patch(`/Users(${u.Id})`, {
    Groups: [
      { GroupId: sales.Id, Rights: { RoleName: 'managers' } },
      { GroupId: support.Id, Rights: { RoleName: 'users' } },
    ],
  });
  t.deepEqual(
    stored.Groups.map((m) => [m.GroupId, m.Rights.RoleName]),
    [
      [sales.Id, 'managers'],
      [support.Id, 'users'],
    ],
  );
  t.is(stored.PrimaryGroupId, sales.Id); // default group dropped → primary moves to the first group
  await api.patch(`/Users(${u.Id})`, { Groups: [{ GroupId: support.Id, Rights: { RoleName: 'group_admins' } }] });
  t.deepEqual(stored.Groups.map((m) => [m.GroupId, m.Rights.RoleName]), [[support.Id, 'group_admins']]);
  await api.patch(`/Users(${u.Id})`, { Groups: [] });
  t.deepEqual(stored.Groups, []);

  await api.patch(`/Users(${u.Id})`, { Phones: [{ MacAddress: '0015650000AA', TemplateName: 'snomD7xx.ph.xml', Name: 'Snom D735' }] });
  const phoneId = stored.Phones[0]!.Id;
  const secret = stored.Phones[0]!.Settings.Secret;
  await api.patch(`/Users(${u.Id})`, {
    Phones: [
      { MacAddress: '0015650000aa', TemplateName: 'snomD7xx.ph.xml', Name: 'Snom D735' },
      { MacAddress: '0015650000bb', TemplateName: 'fanvil.ph.xml' },
    ],
  });
  t.deepEqual(stored.Phones.map((x) => x.MacAddress), ['0015650000aa', '0015650000bb']);
  t.is(stored.Phones[0]!.Id, phoneId);
  t.is(stored.Phones[0]!.Settings.Secret, secret);
  await api.patch(`/Users(${u.Id})`, { Phones: [] });
  t.deepEqual(stored.Phones, []);

  // MAC of another user
  const other = fake.seedUser({ Phones: [{ MacAddress: '0015650000cc', TemplateName: 'fanvil.ph.xml' }] });
  t.truthy(other);
  const used = await api.patch(`/Users(${u.Id})`, { Phones: [{ MacAddress: '0015650000CC', TemplateName: 'fanvil.ph.xml' }] });
  t.deepEqual(detail(used.data), [{ code: '', message: 'WARNINGS.XAPI.MAC_USED_BY', target: 'Phones' }]);
});

test('delete and BatchDelete report failures only', async (t) => {
  const { fake, api } = await setup();
  t.teardown(() => fake.close());
  const [a, b, c, op] = fake.seedUsers(4);
  fake.state.operatorUserId = op!.Id;
  t.is((await api.delete(`/Users(${a!.Id})`)).status, 204);
  t.is((await api.delete(`/Users(${a!.Id})`)).status, 404);

  const ok = await api.post('/Users/Pbx.BatchDelete', { ids: [b!.Id] });
  t.is(ok.status, 200);
  t.deepEqual(ok.data.value, []);

  const mixed = await api.post('/Users/Pbx.BatchDelete', { Ids: [c!.Id, 99999, op!.Id] });
  t.deepEqual(mixed.data.value, [
    { ExtensionNumber: '99999', Error: 'WARNINGS.XAPI.NOT_FOUND' },
    { ExtensionNumber: op!.Number, Error: 'WARNINGS.OPERATOR_CANNOT_BE_DELETED' },
  ]);
  t.deepEqual([...fake.state.users.keys()], [op!.Id]);
});

test('welcome email, regenerate', async (t) => {
  const { fake, api } = await setup();
  t.teardown(() => fake.close());
  const u = fake.seedUser({ EmailAddress: 'w@example.test' });
  t.is((await api.post(`/Users(${u.Id})/Pbx.SendWelcomeEmail`)).status, 204);
  t.is(fake.state.welcomeEmails.length, 1);
  t.is(fake.state.welcomeEmails[0]!.email, 'w@example.test');
  const before = u.AuthPassword;
  t.is((await api.post(`/Users(${u.Id})/Pbx.Regenerate`, { opts: { SipAuth: true } })).status, 204);
  t.not(fake.state.users.get(u.Id)!.AuthPassword, before);
  t.is(fake.state.regenerations.length, 1);
});

// ----- groups --------------------------------------------------------------------------------

test('groups: default group, create, filter, members, delete rules', async (t) => {
  const { fake, api } = await setup();
  t.teardown(() => fake.close());
  const def = await api.get('/Groups', { params: { $filter: 'IsDefault eq true' } });
  t.is(def.data.value.length, 1);
  t.like(def.data.value[0], { Number: 'GRP0000', Name: 'DEFAULT', IsDefault: true });

  const created = await api.post('/Groups', { Name: 'Sales Department' });
  t.is(created.status, 201);
  t.is(created.data.Number, 'GRP0001');
  const dupe = await api.post('/Groups', { Name: 'Sales Department' });
  t.is(dupe.status, 400);
  const byName = await api.get('/Groups', { params: { $filter: "Name eq 'Sales Department'" } });
  t.is(byName.data.value[0].Id, created.data.Id);
  const none = await api.get('/Groups', { params: { $filter: "Name eq 'Nope'" } });
  t.deepEqual(none.data, { '@odata.context': `${fake.url}/xapi/v1/$metadata#Groups`, value: [] });

  const u = fake.seedUser({ Number: '101' });
  t.is((await api.patch(`/Groups(${created.data.Id as number})`, { Members: [{ Number: '101', Rights: { RoleName: 'managers' } }] })).status, 204);
  t.true(u.Groups.some((m) => m.GroupId === created.data.Id && m.Rights.RoleName === 'managers'));
  const members = await api.get(`/Groups(${created.data.Id as number})`, { params: { $expand: 'Members($expand=Rights)' } });
  t.is(members.data.Members[0].Number, '101');
  t.is(members.data.Members[0].Rights.RoleName, 'managers');
  t.true(members.data.HasMembers);

  const withMembers = await api.delete(`/Groups(${created.data.Id as number})`);
  t.deepEqual(detail(withMembers.data)[0]!.message, 'WARNINGS.GROUP_WITH_MEMBERS_CANNOT_BE_DELETED');
  const defDel = await api.post('/Groups/Pbx.DeleteCompanyById', { id: fake.state.defaultGroupId });
  t.deepEqual(detail(defDel.data)[0]!.message, 'WARNINGS.GROUP_CANNOT_BE_DELETED');

  await api.patch(`/Groups(${created.data.Id as number})`, { Members: [] });
  t.false(u.Groups.some((m) => m.GroupId === created.data.Id));
  t.is((await api.post('/Groups/Pbx.DeleteCompanyById', { id: created.data.Id })).status, 204);
  t.false(fake.state.groups.has(created.data.Id));
  const num = await api.patch(`/Groups(${fake.state.defaultGroupId})`, { Number: 'GRP9999' });
  t.is(detail(num.data)[0]!.message, 'WARNINGS.XAPI.FORBIDDEN_CHANGE');
});

// ----- DIDs ----------------------------------------------------------------------------------

test('DIDs: trunk list, GetRoutes/SetRoutes, a DID moves between DNs, unknown DID', async (t) => {
  const { fake, api } = await setup({ trunks: [{ name: 'T1', didNumbers: ['+4930100', '+4930101', '+4930102'] }] });
  t.teardown(() => fake.close());
  const trunk = [...fake.state.trunks.values()][0]!;
  const a = fake.seedUser({ Number: '100', FirstName: 'Ann' });
  const b = fake.seedUser({ Number: '101', FirstName: 'Bob' });

  const sel = await api.get(`/Trunks(${trunk.Id})`, { params: { $select: 'DidNumbers' } });
  t.deepEqual(sel.data.DidNumbers, ['+4930100', '+4930101', '+4930102']);

  const set = await api.post('/Trunks/Pbx.SetRoutes', {
    routes: { Id: a.Id, Routes: [{ DID: '+4930100', TrunkId: trunk.Id, DisplayName: 'Ann' }, { DID: '+4930101', TrunkId: trunk.Id, DisplayName: '' }] },
  });
  t.is(set.status, 204);
  const got = await api.post('/Defs/Pbx.GetRoutes', { ids: [a.Id, b.Id] });
  t.deepEqual(got.data.value, [
    {
      Id: a.Id,
      Routes: [
        { DID: '+4930100', DisplayName: 'Ann', TrunkId: trunk.Id },
        { DID: '+4930101', DisplayName: '', TrunkId: trunk.Id },
      ],
    },
    { Id: b.Id, Routes: [] },
  ]);

  // Routing +4930101 to Bob moves it away from Ann.
  await api.post('/Trunks/Pbx.SetRoutes', { routes: { Id: b.Id, Routes: [{ DID: '+4930101', TrunkId: trunk.Id }] } });
  const after = await api.post('/Defs/Pbx.GetRoutes', { ids: [a.Id, b.Id] });
  t.deepEqual(after.data.value[0].Routes.map((r: { DID: string }) => r.DID), ['+4930100']);
  t.deepEqual(after.data.value[1].Routes.map((r: { DID: string }) => r.DID), ['+4930101']);

  const dids = await api.get('/DidNumbers', { params: { $filter: `TrunkId eq ${trunk.Id}`, $expand: 'RoutingRule', $select: 'Number,TrunkId' } });
  t.is(dids.data.value.length, 3);
  t.is(dids.data.value[1].RoutingRule.OfficeHoursDestination.Number, '101');
  t.is(dids.data.value[2].RoutingRule, null);

  const unknown = await api.post('/Trunks/Pbx.SetRoutes', { routes: { Id: a.Id, Routes: [{ DID: '+4999999', TrunkId: trunk.Id }] } });
  t.is(unknown.status, 400);
  t.deepEqual(detail(unknown.data), [{ code: '', message: 'WARNINGS.XAPI.NOT_FOUND', target: 'DID' }]);

  // PATCH DidNumbers replaces the list and drops routes of removed DIDs.
  t.is((await api.patch(`/Trunks(${trunk.Id})`, { DidNumbers: ['+4930100', '+4930199'] })).status, 204);
  t.deepEqual(trunk.DidNumbers, ['+4930100', '+4930199']);
  t.false(fake.state.routes.has('+4930101'));

  const peers = await api.get('/Peers', { params: { $filter: "Number eq '100' or Number eq '101'", $select: 'Id,Number,Type' } });
  t.deepEqual(peers.data.value, [
    { Id: a.Id, Number: '100', Type: 'Extension' },
    { Id: b.Id, Number: '101', Type: 'Extension' },
  ]);
});

// ----- phones --------------------------------------------------------------------------------

test('phone templates and plug-and-play provisioning', async (t) => {
  const { fake, api } = await setup();
  t.teardown(() => fake.close());
  const tpl = await api.get('/PhoneTemplates', { params: { $select: 'Id,Models' } });
  t.true(tpl.data.value.some((x: { Id: string }) => x.Id === 'yealinkT4x.ph.xml'));
  t.true(tpl.data.value.length >= 5);
  const u = fake.seedUser();
  const d = fake.seedDevice({ MAC: '805EC0112233', Model: 'Yealink T46U' });
  t.is((await api.post(`/DeviceInfos(${d.Id})/Pbx.Provision`, { reprovision: false, userId: u.Id })).status, 204);
  t.is(u.Phones[0]!.MacAddress, '805ec0112233');
  const info = await api.get('/DeviceInfos');
  t.like(info.data.value[0], { Assigned: true, AssignedUser: u.Number });
});

// ----- faults and log ------------------------------------------------------------------------

test('faults: 429 with Retry-After, HTML 502, failWritesWith, path matcher', async (t) => {
  const { fake, api } = await setup();
  t.teardown(() => fake.close());
  fake.faults.nextResponses.push({ status: 429, retryAfter: 2 }, { status: 502, html: true });
  const r1 = await api.get('/Users');
  t.is(r1.status, 429);
  t.is(r1.headers['retry-after'], '2');
  const r2 = await api.get('/Users');
  t.is(r2.status, 502);
  t.regex(String(r2.headers['content-type']), /text\/html/);
  t.regex(r2.data as string, /502 Bad Gateway/);
  t.is((await api.get('/Users')).status, 200);

  fake.faults.nextResponses.push({ status: 503, path: /Groups/ });
  t.is((await api.get('/Users')).status, 200);
  t.is((await api.get('/Groups')).status, 503);

  fake.faults.failWritesWith = { code: 'WARNINGS.LIMIT_REACHED', target: 'Number', times: 1 };
  const w = await api.post('/Users', {});
  t.deepEqual(detail(w.data), [{ code: '', message: 'WARNINGS.LIMIT_REACHED', target: 'Number' }]);
  t.is((await api.post('/Users', {})).status, 201);
});

test('latency option delays responses', async (t) => {
  const { fake, api } = await setup({ latencyMs: 60 });
  t.teardown(() => fake.close());
  const t0 = Date.now();
  await api.get('/Groups');
  t.true(Date.now() - t0 >= 55);
});

test('request log and writes() count non-GET XAPI calls except read-only actions', async (t) => {
  const { fake, api } = await setup();
  t.teardown(() => fake.close());
  const u = fake.seedUser();
  fake.resetLog();
  await api.get('/Users');
  await api.post('/Defs/Pbx.GetRoutes', { ids: [u.Id] });
  await api.get('/Users/Pbx.GetFirstAvailableExtensionNumber()');
  t.is(fake.writes(), 0);
  await api.patch(`/Users(${u.Id})`, { FirstName: 'X' });
  await api.patch(`/Users(${u.Id})`, { Number: '999' }); // failed attempts count too
  await api.post('/Users/Pbx.BatchDelete', { ids: [] });
  t.is(fake.writes(), 3);
  t.is(fake.requests.length, 6);
  t.like(fake.requests[3], { method: 'PATCH', path: `/xapi/v1/Users(${u.Id})`, body: { FirstName: 'X' }, status: 204 });
  t.deepEqual(fake.requests[0]!.query, {});
  t.is(typeof fake.requests[0]!.at, 'number');
});

// ----- process mode --------------------------------------------------------------------------

test('control endpoint drives faults and reports stats', async (t) => {
  const { fake, raw, api } = await setup();
  t.teardown(() => fake.close());
  t.is((await raw.post('/__fake/seed-users', { count: 3 })).data.created, 3);
  t.is((await raw.post('/__fake/faults', { nextResponses: [{ status: 503, retryAfter: 1, pathRegex: 'Users' }] })).status, 204);
  const r = await api.get('/Users');
  t.is(r.status, 503);
  t.is(r.headers['retry-after'], '1');
  await raw.post('/__fake/faults', { revokeTokens: true });
  t.is((await api.get('/Users')).status, 401);
  const stats = await raw.get('/__fake/stats');
  t.like(stats.data, { users: 3, writes: 0 });
  t.false(fake.requests.some((x) => x.path.startsWith('/__fake')));
});

test('main.ts prints a JSON line and serves HTTPS with the written CA', async (t) => {
  const { spawn } = await import('node:child_process');
  const { mkdtempSync, readFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const caOut = join(mkdtempSync(join(tmpdir(), 'fake-xapi-')), 'ca.pem');
  const child = spawn(process.execPath, ['--import=tsx', new URL('./main.ts', import.meta.url).pathname, '--https', '--ca-out', caOut, '--seed-users', '4', '--client-secret', 's3cret'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.teardown(() => {
    child.kill('SIGTERM');
  });
  const line = await new Promise<string>((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) resolve(buf.slice(0, nl));
    });
    child.on('exit', (code) => reject(new Error(`exited ${code}`)));
  });
  const info = JSON.parse(line) as { url: string; clientId: string; clientSecret: string; caFile: string };
  t.is(info.clientId, '900');
  t.is(info.clientSecret, 's3cret');
  t.is(info.caFile, caOut);
  const agent = new https.Agent({ ca: readFileSync(caOut, 'utf8') });
  const tok = await axios.post(`${info.url}/connect/token`, new URLSearchParams({ client_id: '900', client_secret: 's3cret', grant_type: 'client_credentials' }), { httpsAgent: agent });
  const users = await axios.get(`${info.url}/xapi/v1/Users`, { httpsAgent: agent, params: { $count: true, $top: 0 }, headers: { Authorization: `Bearer ${tok.data.access_token as string}` } });
  t.is(users.data['@odata.count'], 4);
});
