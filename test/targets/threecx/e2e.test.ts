/**
 * End to end against 3CX: the real CLI and daemon processes (`node dist/src/cli/main.js`) talk HTTPS to the
 * fake XAPI server running in this process, verified with a CA generated for the test. What the PBX holds
 * is checked in the fake's state; what was sent, in its request log.
 *
 * Serial on purpose: each test spawns several Node processes; run side by side they starve each other and
 * the timings (daemon start, drop-folder settling) stop meaning anything. One after another each takes a
 * few seconds.
 */
import test from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import { ROOT } from '../../helpers/workspace.js';
import type { FakeXapi } from '../../fakes/xapi/server.js';
import {
  SNOM,
  TRUNK_DIDS,
  YEALINK,
  afterRequests,
  makeInstall,
  memberships,
  person,
  routedTo,
  startDaemon,
  startFake,
  threeCxCsv,
  tokenRequests,
  userByNumber,
  writeLines,
  writeRequests,
  type InstallOptions,
} from './e2e-helpers.js';

async function setup(t: { teardown(fn: () => unknown): void }, options: InstallOptions & { fake?: Parameters<typeof startFake>[0] } = {}) {
  const fake = await startFake(options.fake);
  t.teardown(() => fake.close());
  const install = await makeInstall(fake, options);
  return { fake, install };
}

const [DID_A, DID_B, DID_C] = TRUNK_DIDS;

/** Three people covering every mapped part: names, e-mail, mobile, department with role, DID, phone. */
function staff() {
  return [
    person(1001, 'Anna', 'Smith', {
      MobileNumber: '+1 (415) 555-0101',
      Department: 'Sales',
      Role: '”<rolename=””managers””/>”',
      DID: DID_A,
      MAC: '80:5E:C0:11:22:33',
      ...YEALINK,
    }),
    person(1002, 'Bob', 'Stone', { EmailAddress: '', Department: 'Support', Role: '<rolename="system_admins"/>', DID: DID_B }),
    person(1003, 'Carla', 'Diaz', { MobileNumber: '+14155550103', MAC: '0004f2a1b2c3', ...SNOM }),
  ];
}

/** The state staff() must leave in the fake. */
function assertStaff(t: import('ava').ExecutionContext, fake: FakeXapi): void {
  const anna = userByNumber(fake, '1001');
  const bob = userByNumber(fake, '1002');
  const carla = userByNumber(fake, '1003');
  if (!anna || !bob || !carla) return void t.fail(`users missing: ${[...fake.state.users.values()].map((u) => u.Number).join(', ')}`);

  t.like(anna, { FirstName: 'Anna', LastName: 'Smith', EmailAddress: 'anna.smith@example.com', Mobile: '+14155550101', Enabled: true });
  t.like(bob, { FirstName: 'Bob', LastName: 'Stone', EmailAddress: '', Enabled: true });
  t.like(carla, { FirstName: 'Carla', LastName: 'Diaz', EmailAddress: 'carla.diaz@example.com', Mobile: '+14155550103' });

  t.deepEqual(memberships(fake, anna), [{ group: 'Sales', role: 'managers' }]);
  t.deepEqual(memberships(fake, bob), [{ group: 'Support', role: 'system_admins' }]);
  t.deepEqual(memberships(fake, carla), [{ group: 'DEFAULT', role: 'users' }]);

  t.deepEqual(routedTo(fake, anna.Id), [DID_A]);
  t.deepEqual(routedTo(fake, bob.Id), [DID_B]);
  t.deepEqual(routedTo(fake, carla.Id), []);

  t.deepEqual(
    anna.Phones.map((p) => ({ mac: p.MacAddress, template: p.TemplateName, model: p.Name })),
    [{ mac: '805ec0112233', template: YEALINK.Template, model: YEALINK.Model }],
  );
  t.deepEqual(
    carla.Phones.map((p) => ({ mac: p.MacAddress, template: p.TemplateName, model: p.Name })),
    [{ mac: '0004f2a1b2c3', template: SNOM.Template, model: SNOM.Model }],
  );
  t.deepEqual(bob.Phones, []);

  // 3CX mails the account details itself; only users with an e-mail get one, once.
  t.deepEqual(fake.state.welcomeEmails.map((w) => w.number).sort(), ['1001', '1003']);
}

test.serial('daemon: a CSV dropped into inbox/ lands in 3CX (fields, departments, roles, DIDs, phones, welcome mails); a second drop writes nothing', async (t) => {
  const { fake, install } = await setup(t);
  const daemon = await startDaemon(install);
  t.teardown(() => daemon.child.kill('SIGKILL'));

  const report = await daemon.drop('staff.csv', threeCxCsv(staff()));
  t.is(report.rows, 3);
  t.deepEqual(report.rejected, []);
  t.like(report.summary, { create: 3, update: 0, conflicts: 0, errors: 0 });
  assertStaff(t, fake);

  fake.resetLog();
  const again = await daemon.drop('staff-again.csv', threeCxCsv(staff()));
  t.like(again.summary, { create: 0, update: 0, disable: 0, unchanged: 3, conflicts: 0, errors: 0 });
  t.deepEqual(writeLines(fake), [], 'a no-op run sends no write');
  t.is(fake.writes(), 0);
  t.true(fake.requests.length > 0, 'the users were really listed');
  t.is(fake.state.welcomeEmails.length, 2, 'no second welcome mail');

  t.is(await daemon.stop(), 0, 'stops cleanly on SIGTERM');
  t.false(daemon.logs().includes(fake.clientSecret), 'the client secret never appears in the logs');
});

test.serial('CLI: `pbxsync import` applies the same file, a second import and a `pbxsync sync` send zero writes', async (t) => {
  const { fake, install } = await setup(t);
  const file = await install.write('staff.csv', threeCxCsv(staff()));

  const first = await install.importJson(file);
  t.is(first.code, 0, first.stdout + first.stderr);
  t.like(first.json.summary, { create: 3, conflicts: 0, errors: 0 });
  t.deepEqual(first.json.failed, []);
  assertStaff(t, fake);
  // Two departments were new: each created exactly once, before the users that need them.
  t.deepEqual(
    writeRequests(fake).filter((r) => r.path === '/xapi/v1/Groups').map((r) => (r.body as { Name: string }).Name).sort(),
    ['Sales', 'Support'],
  );

  fake.resetLog();
  const second = await install.importJson(file);
  t.is(second.code, 0, second.stderr);
  t.like(second.json.summary, { create: 0, update: 0, disable: 0, enable: 0, delete: 0, adopt: 0, unchanged: 3, conflicts: 0 });
  t.deepEqual(second.json.operations, []);
  t.deepEqual(writeLines(fake), []);
  t.is(fake.writes(), 0, 'invariant 1: a no-op sync writes nothing to the target');

  fake.resetLog();
  const sync = await install.cli(['sync', '--json']);
  t.is(sync.code, 0, sync.stderr);
  t.is(fake.writes(), 0);
  t.is(fake.state.welcomeEmails.length, 2);
});

test.serial('seed rename: 200 Amanda Camden → Noelle Melton with a new e-mail is one PATCH of FirstName/LastName/EmailAddress; phones untouched', async (t) => {
  const { fake, install } = await setup(t);
  const row = (first: string, last: string, email: string) =>
    person(200, first, last, { EmailAddress: email, OutboundCallerID: '18123339201', MAC: '80:5E:C0:11:22:33', ...YEALINK });
  const week1 = await install.write('week1.csv', threeCxCsv([row('Amanda', 'Camden', 'amanda@woodingtonproperties.com'), person(201, 'Kim', 'Killion')]));
  const r1 = await install.importJson(week1);
  t.is(r1.code, 0, r1.stdout + r1.stderr);
  t.is(r1.json.summary.create, 2);
  const before = structuredClone(userByNumber(fake, '200')!);
  t.is(before.FirstName, 'Amanda');

  fake.resetLog();
  const week2 = await install.write('week2.csv', threeCxCsv([row('Noelle', 'Melton', 'noelle@woodingtonproperties.com'), person(201, 'Kim', 'Killion')]));
  const r2 = await install.importJson(week2);
  t.is(r2.code, 0, r2.stdout + r2.stderr);
  t.like(r2.json.summary, { update: 1, create: 0, unchanged: 1, disable: 0, delete: 0 });
  const op = r2.json.operations.find((o) => o.kind === 'update')!;
  t.is(op.extension, '200');
  t.deepEqual([...(op.fields ?? [])].sort(), ['email', 'firstName', 'lastName']);

  const writes = writeRequests(fake);
  t.deepEqual(writes.map((w) => `${w.method} ${w.path}`), [`PATCH /xapi/v1/Users(${before.Id})`], 'exactly one write');
  t.deepEqual(writes[0]!.body, { FirstName: 'Noelle', LastName: 'Melton', EmailAddress: 'noelle@woodingtonproperties.com' });

  const after = userByNumber(fake, '200')!;
  t.is(after.Id, before.Id, 'the same 3CX user');
  t.like(after, { FirstName: 'Noelle', LastName: 'Melton', EmailAddress: 'noelle@woodingtonproperties.com', OutboundCallerID: '+18123339201' });
  t.deepEqual(after.Phones, before.Phones, 'phone Id, provisioning links and secret unchanged');
  t.is(fake.state.welcomeEmails.filter((w) => w.number === '200').length, 1, 'a rename sends no new welcome mail');
});

test.serial('a department is created on first use: one POST /Groups for several new members, none later', async (t) => {
  const { fake, install } = await setup(t);
  const rows = [1001, 1002, 1003, 1004, 1005].map((n) => person(n, `P${n}`, 'Field', { Department: 'Field Service' }));
  const r1 = await install.importJson(await install.write('a.csv', threeCxCsv(rows)));
  t.is(r1.code, 0, r1.stdout + r1.stderr);
  const groupPosts = writeRequests(fake).filter((r) => r.method === 'POST' && r.path === '/xapi/v1/Groups');
  t.is(groupPosts.length, 1);
  t.deepEqual(groupPosts[0]!.body, { Name: 'Field Service' });
  const groups = [...fake.state.groups.values()].filter((g) => g.Name === 'Field Service');
  t.is(groups.length, 1);
  for (const n of ['1001', '1002', '1003', '1004', '1005']) t.deepEqual(memberships(fake, userByNumber(fake, n)!), [{ group: 'Field Service', role: 'users' }]);

  fake.resetLog();
  const r2 = await install.importJson(await install.write('b.csv', threeCxCsv([...rows, person(1006, 'New', 'Joiner', { Department: 'Field Service' })])));
  t.is(r2.code, 0, r2.stderr);
  t.is(r2.json.summary.create, 1);
  t.deepEqual(writeRequests(fake).filter((r) => r.path.startsWith('/xapi/v1/Groups')), [], 'an existing department is not created again');
  t.deepEqual(memberships(fake, userByNumber(fake, '1006')!), [{ group: 'Field Service', role: 'users' }]);
});

test.serial('role rules: the Role column (3CX markup, typographic quotes, UI names) becomes Groups[].Rights.RoleName; a role change PATCHes Groups', async (t) => {
  const { fake, install } = await setup(t);
  const rows = [
    person(1001, 'Olga', 'Owner', { Role: '<rolename="system_owners"/>' }),
    person(1002, 'Max', 'Manager', { Role: '”<rolename=””managers””/>”', Department: 'Sales' }),
    person(1003, 'Rita', 'Reception', { Role: 'Receptionist' }),
    person(1004, 'Gus', 'Groupadmin', { Role: 'group_admins', Department: 'Sales' }),
    person(1005, 'Una', 'User', { Role: '' }),
  ];
  const r1 = await install.importJson(await install.write('roles.csv', threeCxCsv(rows)));
  t.is(r1.code, 0, r1.stdout + r1.stderr);
  const role = (n: string) => memberships(fake, userByNumber(fake, n)!);
  t.deepEqual(role('1001'), [{ group: 'DEFAULT', role: 'system_owners' }]);
  t.deepEqual(role('1002'), [{ group: 'Sales', role: 'managers' }]);
  t.deepEqual(role('1003'), [{ group: 'DEFAULT', role: 'receptionists' }]);
  t.deepEqual(role('1004'), [{ group: 'Sales', role: 'group_admins' }]);
  t.deepEqual(role('1005'), [{ group: 'DEFAULT', role: 'users' }], 'an empty cell falls back to the default role');
  const bodies = writeRequests(fake).filter((r) => r.method === 'POST' && r.path === '/xapi/v1/Users');
  const sent = bodies.find((b) => (b.body as { Number: string }).Number === '1002')!.body as { Groups: Array<{ Rights: { RoleName: string } }> };
  t.deepEqual(sent.Groups.map((g) => g.Rights.RoleName), ['managers']);

  fake.resetLog();
  rows[1] = person(1002, 'Max', 'Manager', { Role: '<rolename="group_owners"/>', Department: 'Sales' });
  const r2 = await install.importJson(await install.write('roles2.csv', threeCxCsv(rows)));
  t.is(r2.code, 0, r2.stderr);
  t.like(r2.json.summary, { update: 1, unchanged: 4 });
  const max = userByNumber(fake, '1002')!;
  const writes = writeRequests(fake);
  t.deepEqual(writes.map((w) => `${w.method} ${w.path}`), [`PATCH /xapi/v1/Users(${max.Id})`]);
  const body = writes[0]!.body as { Groups: Array<{ GroupId: number; Rights: { RoleName: string } }>; PrimaryGroupId: number };
  t.deepEqual(Object.keys(body).sort(), ['Groups', 'PrimaryGroupId']);
  t.deepEqual(body.Groups.map((g) => g.Rights.RoleName), ['group_owners']);
  t.deepEqual(role('1002'), [{ group: 'Sales', role: 'group_owners' }]);
});

test.serial('DIDs are routed, moved from one user to another and swapped between two files', async (t) => {
  const { fake, install } = await setup(t);
  const rows = (a: string[], b: string[], c: string[]) => [
    person(1001, 'Anna', 'Smith', { DID: a.join(';') }),
    person(1002, 'Bob', 'Stone', { DID: b.join(';') }),
    person(1003, 'Carla', 'Diaz', { DID: c.join(';') }),
  ];
  const r1 = await install.importJson(await install.write('one.csv', threeCxCsv(rows([DID_A], [DID_B], []))));
  t.is(r1.code, 0, r1.stdout + r1.stderr);
  const id = (n: string) => userByNumber(fake, n)!.Id;
  t.deepEqual(routedTo(fake, id('1001')), [DID_A]);
  t.deepEqual(routedTo(fake, id('1002')), [DID_B]);

  // A moves to Carla, B and C swap... : Anna gives DID_A to Carla, Bob keeps DID_B and gains DID_C.
  const r2 = await install.importJson(await install.write('two.csv', threeCxCsv(rows([], [DID_B, DID_C], [DID_A]))));
  t.is(r2.code, 0, r2.stdout + r2.stderr);
  t.like(r2.json.summary, { update: 3, conflicts: 0 });
  t.deepEqual(routedTo(fake, id('1001')), []);
  t.deepEqual(routedTo(fake, id('1002')), [DID_B, DID_C].sort());
  t.deepEqual(routedTo(fake, id('1003')), [DID_A]);

  // Swap: Bob's DID_B and Carla's DID_A change hands in one run.
  const r3 = await install.importJson(await install.write('three.csv', threeCxCsv(rows([], [DID_A, DID_C], [DID_B]))));
  t.is(r3.code, 0, r3.stdout + r3.stderr);
  t.like(r3.json.summary, { update: 2, conflicts: 0 });
  t.deepEqual(routedTo(fake, id('1002')), [DID_A, DID_C].sort());
  t.deepEqual(routedTo(fake, id('1003')), [DID_B]);

  fake.resetLog();
  const r4 = await install.importJson(await install.write('four.csv', threeCxCsv(rows([], [DID_A, DID_C], [DID_B]))));
  t.is(r4.code, 0, r4.stderr);
  t.is(fake.writes(), 0, 'routes read back compare equal');
});

test.serial('a MAC already on a hand-made 3CX user: conflict naming the MAC and the holder, the other rows applied (exit 4)', async (t) => {
  const { fake, install } = await setup(t);
  const holder = fake.seedUser({ Number: '300', FirstName: 'Desk', LastName: 'Phone', Phones: [{ MacAddress: '805EC0AABBCC', TemplateName: YEALINK.Template }] });
  const holderBefore = structuredClone(holder);
  const rows = [
    person(1001, 'Anna', 'Smith', { MAC: '80-5e-c0-aa-bb-cc', ...YEALINK }),
    person(1002, 'Bob', 'Stone'),
    person(1003, 'Carla', 'Diaz', { MAC: '805ec0000001', ...YEALINK }),
  ];
  const r = await install.importJson(await install.write('macs.csv', threeCxCsv(rows)));
  t.is(r.code, 4, r.stdout + r.stderr);
  t.like(r.json.summary, { create: 2, conflicts: 1 });
  const conflict = r.json.operations.find((o) => o.kind === 'conflict')!;
  t.is(conflict.extension, '1001');
  t.regex(conflict.reason, /805ec0aabbcc/i);
  t.regex(conflict.reason, /Desk Phone/);
  t.regex(conflict.conflict!.holder, /Desk Phone.*300/);
  t.truthy(userByNumber(fake, '1002'));
  t.deepEqual(userByNumber(fake, '1003')!.Phones.map((p) => p.MacAddress), ['805ec0000001']);
  t.is(userByNumber(fake, '1001'), undefined, 'the conflicting row is not created');
  t.deepEqual(fake.state.users.get(holder.Id), holderBefore, 'the holder is untouched');

  // Through the daemon the report names the row, the MAC and the holder too.
  const daemon = await startDaemon(install);
  t.teardown(() => daemon.child.kill('SIGKILL'));
  const report = await daemon.drop('macs-again.csv', threeCxCsv(rows));
  t.is(report.rejected.length, 1);
  t.is(report.rejected[0]!.line, 2);
  t.regex(report.rejected[0]!.reason, /805ec0aabbcc.*Desk Phone/i);
  t.deepEqual(fake.state.users.get(holder.Id), holderBefore);
  t.is(await daemon.stop(), 0);
});

test.serial('token revoked mid-run: the run re-authenticates exactly once and succeeds', async (t) => {
  const { fake, install } = await setup(t);
  const rows = Array.from({ length: 12 }, (_, i) => person(1001 + i, `Name${i}`, 'Person', { DID: i < 3 ? TRUNK_DIDS[i] : '' }));
  // After the listing and a few creates, another client takes the token (3CX keeps one per client id).
  afterRequests(fake, 8, () => fake.faults.revokeTokens());
  const r = await install.importJson(await install.write('many.csv', threeCxCsv(rows)));
  t.is(r.code, 0, r.stdout + r.stderr);
  t.is(r.json.summary.create, 12);
  t.is(fake.state.users.size, 12);
  t.is(tokenRequests(fake).length, 2, 'one token, one re-authentication');
  t.true(fake.requests.some((q) => q.status === 401), 'the revocation really hit the run');
  const posts = writeRequests(fake).filter((q) => q.method === 'POST' && q.path === '/xapi/v1/Users' && q.status === 201);
  t.is(posts.length, 12, 'no user created twice');
});

test.serial('daemon: a token revoked between two files (slow PBX) costs exactly one re-authentication', async (t) => {
  const { fake, install } = await setup(t, { fake: { latencyMs: 30 } });
  const daemon = await startDaemon(install);
  t.teardown(() => daemon.child.kill('SIGKILL'));
  const r1 = await daemon.drop('one.csv', threeCxCsv([person(1001, 'Anna', 'Smith'), person(1002, 'Bob', 'Stone')]));
  t.like(r1.summary, { create: 2 });
  t.is(tokenRequests(fake).length, 1);

  fake.faults.revokeTokens();
  const r2 = await daemon.drop('two.csv', threeCxCsv([person(1001, 'Anna', 'Smith'), person(1002, 'Bob', 'Stone'), person(1003, 'Carla', 'Diaz')]));
  t.like(r2.summary, { create: 1, unchanged: 2, errors: 0 });
  t.deepEqual(r2.rejected, []);
  t.is(tokenRequests(fake).length, 2);
  t.truthy(userByNumber(fake, '1003'));
  t.is(await daemon.stop(), 0);
});

test.serial('a 503 storm while reading and while writing is retried; the run succeeds without duplicates', async (t) => {
  const { fake, install } = await setup(t);
  // Four in a row on the first requests (the listing), then six more on the creates.
  for (let i = 0; i < 4; i++) fake.faults.nextResponses.push({ status: 503 });
  for (let i = 0; i < 6; i++) fake.faults.nextResponses.push({ status: 503, method: 'POST', path: /^\/xapi\/v1\/Users$/ });
  const rows = [person(1001, 'Anna', 'Smith', { DID: DID_A }), person(1002, 'Bob', 'Stone', { Department: 'Sales' }), person(1003, 'Carla', 'Diaz')];
  const r = await install.importJson(await install.write('storm.csv', threeCxCsv(rows)));
  t.is(r.code, 0, r.stdout + r.stderr);
  t.like(r.json.summary, { create: 3, conflicts: 0, errors: 0 });
  t.is(fake.faults.nextResponses.length, 0, 'every 503 was served');
  t.is(fake.requests.filter((q) => q.status === 503).length, 10);
  t.deepEqual([...fake.state.users.values()].map((u) => u.Number).sort(), ['1001', '1002', '1003']);
  t.deepEqual(routedTo(fake, userByNumber(fake, '1001')!.Id), [DID_A]);

  fake.resetLog();
  const again = await install.importJson(await install.write('storm2.csv', threeCxCsv(rows)));
  t.is(again.code, 0);
  t.is(fake.writes(), 0);
});

test.serial('a user created by hand is never modified: not when a snapshot omits it, not when a row names its extension (conflict, not adoption)', async (t) => {
  const { fake, install } = await setup(t, { mode: 'snapshot' });
  const sales = fake.seedGroup('Sales');
  const hand = fake.seedUser({
    Number: '1500',
    FirstName: 'Hand',
    LastName: 'Made',
    EmailAddress: 'hand.made@example.com',
    Groups: [{ GroupId: sales.Id, Rights: { RoleName: 'managers' } }],
    Phones: [{ MacAddress: '805ec0999999', TemplateName: YEALINK.Template }],
  });
  const handBefore = structuredClone(hand);
  const touchesHand = () =>
    writeRequests(fake).filter((r) => r.path.includes(`(${hand.Id})`) || JSON.stringify(r.body ?? null).includes(`"Id":${hand.Id}`) || JSON.stringify(r.body ?? null).includes(`${hand.Id}]`));

  const r1 = await install.importJson(await install.write('s1.csv', threeCxCsv([person(1001, 'Anna', 'Smith'), person(1002, 'Bob', 'Stone')])));
  t.is(r1.code, 0, r1.stdout + r1.stderr);
  t.like(r1.json.summary, { create: 2, disable: 0, delete: 0, conflicts: 0 });

  // The snapshot omits the hand-made user (and Bob): only Bob, who pbxsync manages, is disabled.
  const r2 = await install.importJson(await install.write('s2.csv', threeCxCsv([person(1001, 'Anna', 'Smith')])));
  t.is(r2.code, 0, r2.stdout + r2.stderr);
  t.like(r2.json.summary, { disable: 1, delete: 0 });
  t.deepEqual(r2.json.operations.map((o) => `${o.kind} ${o.extension}`), ['disable 1002']);

  // A row that names its extension, its e-mail, its MAC: conflicts, never an adoption or an update.
  const r3 = await install.importJson(
    await install.write(
      's3.csv',
      threeCxCsv([
        person(1001, 'Anna', 'Smith'),
        person(1500, 'Someone', 'Else', { Department: 'DEFAULT' }),
        person(1003, 'Carla', 'Diaz', { EmailAddress: 'HAND.MADE@example.com' }),
        person(1004, 'Dan', 'Desk', { MAC: '80:5e:c0:99:99:99', ...YEALINK }),
      ]),
    ),
  );
  t.is(r3.code, 4, r3.stdout + r3.stderr);
  t.like(r3.json.summary, { adopt: 0, conflicts: 3 });
  const conflicts = r3.json.operations.filter((o) => o.kind === 'conflict');
  t.deepEqual(conflicts.map((c) => `${c.extension} ${c.conflict?.field}`).sort(), ['1003 email', '1004 phones', '1500 extension']);
  for (const c of conflicts) t.regex(c.conflict!.holder, /unmanaged user Hand Made/);

  t.deepEqual(touchesHand(), [], 'no write ever addressed the hand-made user');
  t.deepEqual(fake.state.users.get(hand.Id), handBefore, 'the hand-made user is exactly as it was');
  t.false(fake.requests.some((r) => r.method === 'DELETE' || r.path.endsWith('Pbx.BatchDelete')));
});

test.serial('leavers: a user missing from a snapshot is disabled with a PATCH of Enabled only, never deleted; back in the file, re-enabled', async (t) => {
  const { fake, install } = await setup(t, { mode: 'snapshot' });
  const all = [person(1001, 'Anna', 'Smith', { DID: DID_A, MAC: '805ec0123456', ...YEALINK }), person(1002, 'Bob', 'Stone'), person(1003, 'Carla', 'Diaz')];
  const r1 = await install.importJson(await install.write('full.csv', threeCxCsv(all)));
  t.is(r1.code, 0, r1.stdout + r1.stderr);
  const anna = userByNumber(fake, '1001')!;
  const annaBefore = structuredClone(anna);

  fake.resetLog();
  const r2 = await install.importJson(await install.write('left.csv', threeCxCsv(all.slice(1))));
  t.is(r2.code, 0, r2.stdout + r2.stderr);
  t.like(r2.json.summary, { disable: 1, delete: 0, update: 0, unchanged: 2 });
  const writes = writeRequests(fake);
  t.deepEqual(writes.map((w) => `${w.method} ${w.path}`), [`PATCH /xapi/v1/Users(${anna.Id})`]);
  t.deepEqual(writes[0]!.body, { Enabled: false });
  const now = fake.state.users.get(anna.Id);
  t.truthy(now, 'still in 3CX');
  t.is(now!.Enabled, false);
  t.deepEqual({ ...now!, Enabled: true }, annaBefore, 'nothing else changed: DIDs, phones, e-mail stay');
  t.deepEqual(routedTo(fake, anna.Id), [DID_A]);

  fake.resetLog();
  const r3 = await install.importJson(await install.write('left-again.csv', threeCxCsv(all.slice(1))));
  t.is(r3.code, 0, r3.stderr);
  t.is(fake.writes(), 0, 'a disabled leaver is not disabled again');

  fake.resetLog();
  const r4 = await install.importJson(await install.write('back.csv', threeCxCsv(all)));
  t.is(r4.code, 0, r4.stdout + r4.stderr);
  t.like(r4.json.summary, { enable: 1, create: 0 });
  t.deepEqual(writeRequests(fake).map((w) => w.body), [{ Enabled: true }]);
  t.is(fake.state.users.get(anna.Id)!.Enabled, true);
});

test.serial('the full 3CX V20 CSV row of seed 000 round-trips: its options land in 3CX, a re-import plans and writes nothing', async (t) => {
  const { fake, install } = await setup(t);
  const seed = (await fs.readFile(path.join(ROOT, 'test/fixtures/csv/seed-000.csv'), 'utf8')).replace('email@', 'name.surname@example.com');
  const file = await install.write('seed.csv', seed);
  const r1 = await install.importJson(file);
  t.is(r1.code, 0, r1.stdout + r1.stderr);
  t.is(r1.json.summary.create, 1);
  const u = userByNumber(fake, '1001')!;
  t.like(u, {
    ClickToCallId: 'namesurname',
    WebMeetingApproveParticipants: false,
    VMPIN: '731826',
    VMEmailOptions: 'Notification', // CSV coding 1
    VMPlayMsgDateTime: 'None', // CSV coding 0
    VMDisablePinAuth: true,
    VMPlayCallerID: false,
    RecordCalls: false,
    MyPhoneHideForwardings: false,
    PinProtected: false,
    AllowLanOnly: true,
    Enabled: true,
  });
  t.deepEqual(memberships(fake, u), [{ group: 'DEFAULT', role: 'system_owners' }]);

  fake.resetLog();
  const r2 = await install.cli(['import', file]);
  t.is(r2.code, 0, r2.stdout + r2.stderr);
  t.is(fake.writes(), 0, 'invariant 1 holds for a row with every column filled');
  t.regex(r2.stdout, /# the 3cx target cannot store the mapped options ClickToCallAuth, DisableExternalCalls, RecordStartStop, VMLanguage/);
  const r3 = await install.importJson(file);
  t.like(r3.json.summary, { unchanged: 1, update: 0 });

  // One option changed in the spreadsheet: one PATCH that sets it.
  fake.resetLog();
  const changed = await install.write('seed2.csv', seed.replace(',731826,1,1,', ',731826,2,1,'));
  const r4 = await install.importJson(changed);
  t.is(r4.code, 0, r4.stdout + r4.stderr);
  t.like(r4.json.summary, { update: 1 });
  t.deepEqual(writeLines(fake), [`PATCH /xapi/v1/Users(${u.Id})`]);
  t.is((writeRequests(fake)[0]!.body as Record<string, unknown>).VMEmailOptions, 'Attachment');
  t.is(userByNumber(fake, '1001')!.VMEmailOptions, 'Attachment');
});

test.serial('a department move and a new phone model are one PATCH; the phone keeps its Id and provisioning secret; then nothing to do', async (t) => {
  const { fake, install } = await setup(t);
  const row = (dept: string, phone: { Template: string; Model: string }) =>
    person(1001, 'Anna', 'Smith', { Department: dept, Role: '<rolename="managers"/>', MAC: '805ec0445566', ...phone });
  const r1 = await install.importJson(await install.write('a.csv', threeCxCsv([row('Sales', YEALINK)])));
  t.is(r1.code, 0, r1.stdout + r1.stderr);
  const before = structuredClone(userByNumber(fake, '1001')!);

  fake.resetLog();
  const moved = { Template: YEALINK.Template, Model: 'Yealink T54W' };
  const r2 = await install.importJson(await install.write('b.csv', threeCxCsv([row('Support', moved)])));
  t.is(r2.code, 0, r2.stdout + r2.stderr);
  t.like(r2.json.summary, { update: 1 });
  t.deepEqual(writeLines(fake), ['POST /xapi/v1/Groups', `PATCH /xapi/v1/Users(${before.Id})`]);
  const after = userByNumber(fake, '1001')!;
  t.deepEqual(memberships(fake, after), [{ group: 'Support', role: 'managers' }]);
  t.is(after.Phones.length, 1);
  t.is(after.Phones[0]!.Id, before.Phones[0]!.Id);
  t.is(after.Phones[0]!.Settings.Secret, before.Phones[0]!.Settings.Secret);
  t.is(after.Phones[0]!.ProvisioningLinkExt, before.Phones[0]!.ProvisioningLinkExt);
  t.is(after.Phones[0]!.Name, 'Yealink T54W');

  fake.resetLog();
  const r3 = await install.importJson(await install.write('c.csv', threeCxCsv([row('Support', moved)])));
  t.is(r3.code, 0, r3.stderr);
  t.is(fake.writes(), 0);
});
