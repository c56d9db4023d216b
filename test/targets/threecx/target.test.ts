import test from 'ava';
import { ConflictError, TerminalError } from '../../../src/errors/index.js';
import type { ThreeCxTarget } from '../../../src/targets/threecx/target.js';
import { apiCalls, changedFields, collect, fieldsOf, startFake, targetFor, userInput } from './helpers.js';
import type { FakeXapi } from '../../fakes/xapi/server.js';

async function setup(t: { teardown(fn: () => unknown): void }, options: Parameters<typeof startFake>[0] = {}) {
  const fake = await startFake(options);
  const target = targetFor(fake);
  t.teardown(async () => {
    await target.close();
    await fake.close();
  });
  return { fake, target };
}

async function listed(target: ThreeCxTarget, extension: string) {
  return (await collect(target.listUsers())).find((u) => u.extension === extension);
}

function lastWrite(fake: FakeXapi, method: string, pathPart: string) {
  return [...fake.requests].reverse().find((r) => r.method === method && r.path.includes(pathPart));
}

test('create → list round trip equals the input, and a second sync writes nothing', async (t) => {
  const { fake, target } = await setup(t);
  const input = userInput({
    department: 'Sales',
    extraDepartments: ['Support'],
    role: 'managers',
    dids: ['+493012345601', '+493012345600'].sort(),
    phones: [{ mac: '001565aabbcc', model: 'Yealink T46U', template: 'yealinkT4x.ph.xml' }],
    recordCalls: true,
    hideInPhonebook: true,
    outboundCallerId: '+493012345600',
    language: 'DE',
    options: { AllowLanOnly: '0', CallScreening: '1' },
  });
  const created = await target.createUser(input);
  t.deepEqual(changedFields(fieldsOf(input), created), {}, 'createUser returns what it created');
  t.is(created.options.ClickToCallFriendlyName, 'amandacamden200', 'options 3CX filled in are reported too');

  const actual = await listed(target, '200');
  t.truthy(actual);
  t.is(actual!.id, created.id);
  t.deepEqual(changedFields(fieldsOf(input), actual!), {}, 'nothing differs after a round trip');
  t.deepEqual({ ...fieldsOf(actual!), options: {} }, { ...fieldsOf(input), options: {} });

  const writesBefore = fake.writes();
  const targetWritesBefore = target.writeCount();
  const again = await listed(target, '200');
  const changes = changedFields(fieldsOf(input), again!);
  if (Object.keys(changes).length) await target.updateUser(again!.id, changes);
  t.is(fake.writes(), writesBefore, 'a no-op sync sends zero writes');
  t.is(target.writeCount(), targetWritesBefore);
});

test('server defaults (empty strings, generated PIN, default group) compare equal to a minimal user', async (t) => {
  const { fake, target } = await setup(t);
  const input = userInput({ email: null, mobile: null, vmPin: null });
  await target.createUser(input);
  const actual = await listed(target, '200');
  const { vmPin: _ignored, ...desired } = fieldsOf(input);
  t.deepEqual(changedFields(desired as typeof input, actual!), {});
  t.regex(actual!.vmPin ?? '', /^\d{4,}$/, '3CX generated a PIN');
  const stored = fake.state.users.get(Number(actual!.id))!;
  t.is(stored.EmailAddress, '');
});

test('rename PATCHes only FirstName, LastName and EmailAddress', async (t) => {
  const { fake, target } = await setup(t);
  const u = await target.createUser(userInput());
  await target.updateUser(u.id, { firstName: 'Amy', lastName: 'Camden-Smith', email: 'Amy.Smith@Example.com' });
  const patch = lastWrite(fake, 'PATCH', `/Users(${u.id})`)!;
  t.deepEqual(Object.keys(patch.body as object).sort(), ['EmailAddress', 'FirstName', 'LastName']);
  t.deepEqual(patch.body, { FirstName: 'Amy', LastName: 'Camden-Smith', EmailAddress: 'amy.smith@example.com' });
  const after = await listed(target, '200');
  t.is(after!.email, 'amy.smith@example.com');
  t.is(after!.firstName, 'Amy');
});

test('a department is created on first use, once, even for concurrent creates', async (t) => {
  const { fake, target } = await setup(t);
  t.false((await target.listDepartments()).includes('Field Ops'));
  await Promise.all([
    target.createUser(userInput({ extension: '201', email: 'a@example.test', department: 'Field Ops' })),
    target.createUser(userInput({ extension: '202', email: 'b@example.test', department: 'Field Ops' })),
    target.createUser(userInput({ extension: '203', email: 'c@example.test', department: 'Field Ops', extraDepartments: ['Night Shift'] })),
  ]);
  t.is(apiCalls(fake).filter((c) => c === 'POST /Groups').length, 2, 'Field Ops and Night Shift, one POST each');
  const names = await target.listDepartments();
  t.true(names.includes('Field Ops') && names.includes('Night Shift') && names.includes('DEFAULT'));
  await target.ensureDepartments(['Field Ops', 'Warehouse']);
  t.is(apiCalls(fake).filter((c) => c === 'POST /Groups').length, 3);
});

test('role is written on every group membership; a role change sends the whole Groups list', async (t) => {
  const { fake, target } = await setup(t);
  const u = await target.createUser(userInput({ department: 'Sales', extraDepartments: ['Support'], role: 'group_admins' }));
  const stored = () => fake.state.users.get(Number(u.id))!;
  t.deepEqual(stored().Groups.map((g) => g.Rights.RoleName), ['group_admins', 'group_admins']);
  const sales = [...fake.state.groups.values()].find((g) => g.Name === 'Sales')!;
  t.is(stored().PrimaryGroupId, sales.Id);

  await target.updateUser(u.id, { role: 'managers' });
  const patch = lastWrite(fake, 'PATCH', `/Users(${u.id})`)!;
  const body = patch.body as { Groups: Array<{ GroupId: number; Rights: { RoleName: string } }>; PrimaryGroupId: number };
  t.deepEqual(Object.keys(body).sort(), ['Groups', 'PrimaryGroupId']);
  t.is(body.Groups.length, 2);
  t.true(body.Groups.every((g) => g.Rights.RoleName === 'managers'));
  const after = await listed(target, '200');
  t.is(after!.role, 'managers');
  t.is(after!.department, 'Sales');
  t.deepEqual(after!.extraDepartments, ['Support']);

  await target.updateUser(u.id, { department: 'Support', extraDepartments: [] });
  const moved = await listed(target, '200');
  t.is(moved!.department, 'Support');
  t.deepEqual(moved!.extraDepartments, []);
  t.is(moved!.role, 'managers', 'the role is kept when only departments change');
});

test('DIDs are routed with SetRoutes and move between users', async (t) => {
  const { fake, target } = await setup(t);
  const a = await target.createUser(userInput({ extension: '201', email: 'a@example.test', dids: ['+493012345600'] }));
  const b = await target.createUser(userInput({ extension: '202', email: 'b@example.test' }));
  t.is(fake.state.routes.get('+493012345600')?.DnId, Number(a.id));
  const setRoutes = lastWrite(fake, 'POST', 'Trunks/Pbx.SetRoutes')!;
  t.like(setRoutes.body, { routes: { Id: Number(a.id), Routes: [{ DID: '+493012345600' }] } });
  t.true(typeof (setRoutes.body as { routes: { Routes: Array<{ TrunkId: number }> } }).routes.Routes[0]!.TrunkId === 'number');

  await target.updateUser(b.id, { dids: ['+493012345600', '+498912345700'] });
  await target.updateUser(a.id, { dids: [] });
  const users = await collect(target.listUsers());
  t.deepEqual(users.find((u) => u.id === a.id)!.dids, []);
  t.deepEqual(users.find((u) => u.id === b.id)!.dids, ['+493012345600', '+498912345700']);
});

test('a DID on no trunk is a TerminalError naming the DID', async (t) => {
  const { target } = await setup(t);
  const u = await target.createUser(userInput());
  const err = await t.throwsAsync(target.updateUser(u.id, { dids: ['+15550001111'] }), { instanceOf: TerminalError });
  t.is(err!.message, 'user 200 (Amanda Camden): DID +15550001111 is not a DID of any 3CX trunk (add it to a trunk first)');
  t.is(err!.field, 'dids');
});

test('a MAC already used by another user is a ConflictError naming the MAC and the holder', async (t) => {
  const { fake, target } = await setup(t);
  fake.seedUser({ Number: '300', FirstName: 'Hand', LastName: 'Made', EmailAddress: 'hand@example.test', Phones: [{ MacAddress: '001565aabbcc', TemplateName: 'yealinkT4x.ph.xml' }] });
  const err = await t.throwsAsync(
    target.createUser(userInput({ phones: [{ mac: '00:15:65:AA:BB:CC' as string, template: 'yealinkT4x.ph.xml' }] })),
    { instanceOf: ConflictError },
  );
  t.is(err!.field, 'phones');
  t.is(err!.holder, 'user 300 (Hand Made), phone 001565aabbcc');
  t.is(err!.message, 'user 200 (Amanda Camden): phone MAC 001565aabbcc is already attached to another user: held by user 300 (Hand Made), phone 001565aabbcc');
});

test('an extension held by an unmanaged user is a ConflictError naming the holder', async (t) => {
  const { fake, target } = await setup(t);
  fake.seedUser({ Number: '200', FirstName: 'Other', LastName: 'Person', EmailAddress: 'other@example.test' });
  const err = await t.throwsAsync(target.createUser(userInput()), { instanceOf: ConflictError });
  t.is(err!.message, 'user 200 (Amanda Camden): extension 200 is already in use: held by user 200 (Other Person)');
  t.is(err!.field, 'extension');
});

test('a user created by hand is listed, normalised, and left untouched', async (t) => {
  const { fake, target } = await setup(t);
  const seeded = fake.seedUser({ Number: '150', FirstName: 'Hand', LastName: 'Made', EmailAddress: 'Hand.Made@Example.TEST', Mobile: '' });
  const snapshot = structuredClone(seeded);
  const writes = fake.writes();
  await target.createUser(userInput());
  const users = await collect(target.listUsers());
  const hand = users.find((u) => u.extension === '150');
  t.like(hand, { id: String(seeded.Id), firstName: 'Hand', lastName: 'Made', email: 'hand.made@example.test', mobile: null, department: 'DEFAULT', role: 'users' });
  t.deepEqual(fake.state.users.get(seeded.Id), snapshot);
  t.false(fake.requests.some((r) => r.method !== 'GET' && r.path.includes(`(${seeded.Id})`)));
  t.is(fake.writes(), writes + 1, 'only the create was a write');
});

test('disable is a PATCH of Enabled only', async (t) => {
  const { fake, target } = await setup(t);
  const u = await target.createUser(userInput());
  await target.updateUser(u.id, { enabled: false });
  t.deepEqual(lastWrite(fake, 'PATCH', `/Users(${u.id})`)!.body, { Enabled: false });
  t.false((await listed(target, '200'))!.enabled);
});

test('phones: replacing the list keeps a staying phone (same Id and provisioning secret)', async (t) => {
  const { fake, target } = await setup(t);
  const u = await target.createUser(userInput({ phones: [{ mac: '001565aabbcc', template: 'yealinkT4x.ph.xml', model: 'Yealink T46U' }] }));
  const before = fake.state.users.get(Number(u.id))!.Phones[0]!;
  await target.updateUser(u.id, {
    phones: [
      { mac: '001565aabbcc', template: 'yealinkT4x.ph.xml', model: 'Yealink T48U' },
      { mac: '000413aabbcc', template: 'snomD7xx.ph.xml', model: 'Snom D785' },
    ],
  });
  const phones = fake.state.users.get(Number(u.id))!.Phones;
  const kept = phones.find((p) => p.MacAddress === '001565aabbcc')!;
  t.is(kept.Id, before.Id);
  t.deepEqual(kept.Settings, before.Settings);
  t.is(kept.Name, 'Yealink T48U');
  t.deepEqual((await listed(target, '200'))!.phones.map((p) => p.mac), ['000413aabbcc', '001565aabbcc']);
});

test('deleteUsers: deleted, already gone, and refused (operator) reported per id', async (t) => {
  const { fake, target } = await setup(t);
  const a = await target.createUser(userInput({ extension: '201', email: 'a@example.test' }));
  const b = await target.createUser(userInput({ extension: '202', email: 'b@example.test' }));
  const op = fake.seedUser({ Number: '203', FirstName: 'Op', LastName: 'Erator', EmailAddress: 'op@example.test' });
  fake.state.operatorUserId = op.Id;
  fake.state.users.delete(Number(b.id));
  const results = await target.deleteUsers([a.id, b.id, String(op.Id)]);
  t.deepEqual(results.slice(0, 2), [{ id: a.id }, { id: b.id }]);
  t.is(results[2]!.id, String(op.Id));
  t.is(results[2]!.error, "user 203 (Op Erator): it is the operator extension, which 3CX does not allow deleting");
  t.false(fake.state.users.has(Number(a.id)));
  const batch = lastWrite(fake, 'POST', 'Users/Pbx.BatchDelete')!;
  // b was removed behind the target's back: 3CX reports it by id as NOT_FOUND, which counts as deleted.
  t.deepEqual(batch.body, { ids: [Number(a.id), Number(b.id), op.Id] });

  // A target that never saw the ids looks them up first; a missing one is not even sent.
  const fresh = targetFor(fake);
  t.teardown(() => fresh.close());
  const batches = apiCalls(fake).filter((c) => c.endsWith('BatchDelete')).length;
  t.deepEqual(await fresh.deleteUsers(['99999']), [{ id: '99999' }]);
  t.is(apiCalls(fake).filter((c) => c.endsWith('BatchDelete')).length, batches);
});

test('sendWelcome on create when asked and the user has an e-mail', async (t) => {
  const { fake, target } = await setup(t);
  await target.createUser(userInput({ extension: '201', email: 'a@example.test', sendWelcome: true }));
  await target.createUser(userInput({ extension: '202', email: null, sendWelcome: true }));
  t.deepEqual(fake.state.welcomeEmails.map((w) => w.number), ['201']);
});

test('a refused field becomes a readable TerminalError naming the user', async (t) => {
  const { target } = await setup(t);
  const err = await t.throwsAsync(target.createUser(userInput({ firstName: 'A'.repeat(51) })), { instanceOf: TerminalError });
  t.is(err!.message, `user 200 (${'A'.repeat(51)} Camden): the first name is longer than 50 characters`);
  t.is(err!.field, 'firstName');
});

test('the client-side write limit holds even when called directly', async (t) => {
  const fake = await startFake();
  const target = targetFor(fake, { writesPerSecond: 5 });
  t.teardown(async () => {
    await target.close();
    await fake.close();
  });
  await target.listDepartments();
  const started = Date.now();
  await Promise.all(Array.from({ length: 12 }, (_, i) => target.createUser(userInput({ extension: String(300 + i), email: `u${i}@example.test` }))));
  const elapsed = Date.now() - started;
  const writes = fake.requests.filter((r) => r.method === 'POST' && r.path === '/xapi/v1/Users').map((r) => r.at);
  t.is(writes.length, 12);
  for (const at of writes) t.true(writes.filter((x) => x >= at && x < at + 1000).length <= 5);
  t.true(elapsed >= 2000, `12 writes at 5/s need two full windows (took ${elapsed} ms)`);
});
