import test from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import { ConflictError, TerminalError } from '../../../src/errors/index.js';
import { redact } from '../../../src/log.js';
import { webPasswordProblem } from '../../../src/targets/embedded/rules.js';
import type { CreateUserInput } from '../../../src/targets/types.js';
import { collect, openTarget, tempDir, userInput } from './helpers.js';

const emergency = ['911', '112', '15', '17', '18', '999', '110'];
for (const extension of emergency) {
  test(`extension ${extension} is refused as an emergency number`, async (t) => {
    const target = await openTarget(t, await tempDir(t));
    await t.throwsAsync(target.createUser(userInput({ extension })), {
      instanceOf: TerminalError,
      message: `extension ${extension} is an emergency number and can never be an extension`,
    });
  });
}

const badExtensions: Array<[string, RegExp]> = [
  ['1950', /extension 1950 is inside a reserved range/],
  ['10a1', /extension "10a1" must be digits only/],
  ['1', /must have 2 to 10 digits/],
  ['', /must be digits only/],
];
for (const [extension, message] of badExtensions) {
  test(`extension ${JSON.stringify(extension)} is refused`, async (t) => {
    const target = await openTarget(t, await tempDir(t));
    const err = await t.throwsAsync(target.createUser(userInput({ extension })), { instanceOf: TerminalError, message });
    t.is((err as TerminalError).field, 'extension');
  });
}

/** Each row: an existing user, a second one that collides with it, and the exact message. */
const collisions: Array<[string, Partial<CreateUserInput>, Partial<CreateUserInput>, string, string]> = [
  ['extension', { extension: '1002', firstName: 'Bob', lastName: 'Stone' }, { extension: '1002' }, 'extension', 'extension 1002: extension 1002 is already used by extension 1002 (Bob Stone)'],
  [
    'e-mail, whatever its case',
    { extension: '1002', firstName: 'Bob', lastName: 'Stone', email: 'anna@x.com' },
    { extension: '1001', email: 'Anna@X.com' },
    'email',
    'extension 1001: e-mail anna@x.com is already used by extension 1002 (Bob Stone)',
  ],
  [
    'DID',
    { extension: '1002', firstName: 'Bob', lastName: 'Stone', dids: ['+4930111', '+4930222'] },
    { extension: '1001', dids: ['+4930222'] },
    'dids',
    'extension 1001: DID +4930222 is already used by extension 1002 (Bob Stone)',
  ],
  [
    'MAC, whatever its notation',
    { extension: '1002', firstName: 'Bob', lastName: 'Stone', phones: [{ mac: '001565aabbcc' }] },
    { extension: '1001', phones: [{ mac: '00:15:65:AA:BB:CC' }] },
    'phones',
    'extension 1001: MAC 001565aabbcc is already used by extension 1002 (Bob Stone)',
  ],
];
for (const [name, holder, second, field, message] of collisions) {
  test(`a ${name} already used is a conflict naming the holder`, async (t) => {
    const target = await openTarget(t, await tempDir(t));
    await target.createUser(userInput(holder));
    const err = await t.throwsAsync(target.createUser(userInput(second)), { instanceOf: ConflictError, message });
    t.is((err as ConflictError).field, field);
    t.is((err as ConflictError).holder, 'extension 1002 (Bob Stone)');
  });
}

test('a refused create changes nothing', async (t) => {
  const target = await openTarget(t, await tempDir(t));
  await target.createUser(userInput({ extension: '1002', email: 'bob@x.com' }));
  await t.throwsAsync(target.createUser(userInput({ extension: '1003', email: 'bob@x.com', dids: ['+4930999'] })));
  // The DID of the refused user is still free.
  await t.notThrowsAsync(target.createUser(userInput({ extension: '1004', dids: ['+4930999'] })));
  t.deepEqual((await collect(target.listUsers())).map((u) => u.extension), ['1002', '1004']);
});

test('first name is required', async (t) => {
  const target = await openTarget(t, await tempDir(t));
  await t.throwsAsync(target.createUser(userInput({ firstName: ' ' })), { instanceOf: TerminalError, message: 'extension 1001: first name is required' });
});

test('an unknown department (main or extra) is refused until ensureDepartments creates it', async (t) => {
  const target = await openTarget(t, await tempDir(t));
  await t.throwsAsync(target.createUser(userInput({ department: 'Sales' })), { instanceOf: TerminalError, message: /extension 1001: department "Sales" does not exist/ });
  await t.throwsAsync(target.createUser(userInput({ extraDepartments: ['Support'] })), { instanceOf: TerminalError, message: /department "Support" does not exist/ });
  await target.ensureDepartments(['Sales', 'Support']);
  const user = await target.createUser(userInput({ department: 'Sales', extraDepartments: ['Support', 'Sales'] }));
  t.is(user.department, 'Sales');
  t.deepEqual(user.extraDepartments, ['Support']);
});

test('DEFAULT always exists, in a new store and after reopening', async (t) => {
  const dir = await tempDir(t);
  const target = await openTarget(t, dir);
  t.deepEqual(await target.listDepartments(), ['DEFAULT']);
  await target.ensureDepartments(['Sales', 'DEFAULT']);
  await target.close();
  const again = await openTarget(t, dir);
  t.deepEqual(await again.listDepartments(), ['DEFAULT', 'Sales']);
});

test('ensureDepartments refuses a blank name', async (t) => {
  const target = await openTarget(t, await tempDir(t));
  await t.throwsAsync(target.ensureDepartments(['  ']), { instanceOf: TerminalError });
});

test('a role must be one of the 7 role identifiers', async (t) => {
  const target = await openTarget(t, await tempDir(t));
  await t.throwsAsync(target.createUser(userInput({ role: 'owners' as never })), { instanceOf: TerminalError, message: /role "owners" is not one of/ });
  t.is((await target.createUser(userInput({ role: 'system_owners' }))).role, 'system_owners');
});

test('a created user gets valid generated credentials, 2FA off, and its PIN back for the planner', async (t) => {
  const target = await openTarget(t, await tempDir(t));
  const { require2fa: _unset, ...withoutTwoFa } = userInput();
  const user = await target.createUser(withoutTwoFa as CreateUserInput);
  t.false(user.require2fa);
  t.regex(user.vmPin!, /^[0-9]{6}$/);
  t.regex(user.id, /^[0-9a-f-]{36}$/);
  // PINs are masked by field name in logs, not by value (6 digits would mask parts of phone numbers).
  t.is(redact(`pin ${user.vmPin}`), `pin ${user.vmPin}`);
  // The PIN given by a mapping is kept.
  t.is((await target.createUser(userInput({ extension: '1002', vmPin: '4711' }))).vmPin, '4711');
});

test('the stored credentials meet the rules and never appear in describeUser', async (t) => {
  const dir = await tempDir(t);
  const target = await openTarget(t, dir);
  const user = await target.createUser(userInput({ email: 'anna@x.com' }));
  await target.close();
  const doc = JSON.parse(await fs.readFile(path.join(dir, 'pbx.json'), 'utf8'));
  const credentials = doc.users[0].credentials;
  t.regex(credentials.sipAuthId, /^[a-z0-9]{10}$/);
  t.is(webPasswordProblem(credentials.webPassword), undefined);
  t.is(credentials.vmPin, user.vmPin);
  // Generated passwords are registered: a log line that contained one would show [redacted].
  t.is(redact(`web ${credentials.webPassword} sip ${credentials.sipPassword}`), 'web [redacted] sip [redacted]');
  const again = await openTarget(t, dir);
  const view = again.describeUser(user.id)!;
  const shown = JSON.stringify(view);
  for (const secret of Object.values(credentials) as string[]) t.false(shown.includes(secret));
  t.false('vmPin' in view);
  t.deepEqual(view.status, ['New']);
  t.deepEqual(again.getUser('1001'), view);
});

test('status tags: Setup Required without e-mail, New with one', async (t) => {
  const target = await openTarget(t, await tempDir(t));
  await target.createUser(userInput({ extension: '1001' }));
  await target.createUser(userInput({ extension: '1002', email: 'b@x.com' }));
  t.deepEqual(target.getUser('1001')!.status, ['Setup Required']);
  t.deepEqual(target.getUser('1002')!.status, ['New']);
  t.is(target.getUser('1003'), undefined);
});

test('listUsers yields normalised users in extension order', async (t) => {
  const target = await openTarget(t, await tempDir(t));
  await target.ensureDepartments(['Sales', 'Admin']);
  for (const extension of ['1000', '99', '100', '12']) await target.createUser(userInput({ extension }));
  await target.createUser(
    userInput({
      extension: '101',
      email: 'Zoe@Example.com',
      department: 'DEFAULT',
      extraDepartments: ['Sales', 'Admin'],
      dids: ['+4930222', '+4930111'],
      phones: [{ mac: 'BB:BB:BB:BB:BB:BB' }, { mac: 'aaaaaaaaaaaa' }],
    }),
  );
  const users = await collect(target.listUsers());
  t.deepEqual(users.map((u) => u.extension), ['12', '99', '100', '101', '1000']);
  const zoe = users[3];
  t.is(zoe.email, 'zoe@example.com');
  t.deepEqual(zoe.extraDepartments, ['Admin', 'Sales']);
  t.deepEqual(zoe.dids, ['+4930111', '+4930222']);
  t.deepEqual(zoe.phones.map((p) => p.mac), ['aaaaaaaaaaaa', 'bbbbbbbbbbbb']);
  // What a caller does with a listed user does not reach the store: lists are copies, and the options map
  // (shared with the store, not copied, for 100,000-user listings) is frozen, so a change is refused loudly.
  zoe.dids.push('+4930333');
  t.throws(() => {
    zoe.options.x = '1';
  }, { instanceOf: TypeError });
  const fresh = (await collect(target.listUsers()))[3];
  t.deepEqual(fresh.dids, ['+4930111', '+4930222']);
  t.deepEqual(fresh.options, {});
});

test('listUsers pages through a large store and stops on abort', async (t) => {
  const target = await openTarget(t, await tempDir(t));
  for (let i = 0; i < 1050; i++) await target.createUser(userInput({ extension: String(20000 + i) }));
  t.is((await collect(target.listUsers())).length, 1050);
  const controller = new AbortController();
  let seen = 0;
  const reason = await (async () => {
    for await (const _ of target.listUsers(controller.signal)) if (++seen === 10) controller.abort();
  })().then(
    () => undefined,
    (err: unknown) => err,
  );
  t.is((reason as { name?: string })?.name, 'AbortError');
  t.is(seen, 1000, 'the abort is seen at the next page');
});

test('updateUser changes only the fields given and moves unique claims', async (t) => {
  const target = await openTarget(t, await tempDir(t));
  const anna = await target.createUser(userInput({ email: 'anna@x.com', dids: ['+4930111'], lastName: 'Smith' }));
  await target.updateUser(anna.id, { email: 'Anna.Smith@X.com', dids: ['+4930222'] });
  const [after] = await collect(target.listUsers());
  t.is(after.email, 'anna.smith@x.com');
  t.deepEqual(after.dids, ['+4930222']);
  t.is(after.lastName, 'Smith');
  // The old e-mail and DID are free again; the new ones are taken.
  await t.notThrowsAsync(target.createUser(userInput({ extension: '1002', email: 'anna@x.com', dids: ['+4930111'] })));
  await t.throwsAsync(target.createUser(userInput({ extension: '1003', dids: ['+4930222'] })), { instanceOf: ConflictError });
});

test('updateUser refuses another extension and unknown fields, and accepts its own extension', async (t) => {
  const target = await openTarget(t, await tempDir(t));
  const anna = await target.createUser(userInput());
  await t.throwsAsync(target.updateUser(anna.id, { extension: '1002' } as never), {
    instanceOf: TerminalError,
    message: /^extension 1001: the extension cannot be changed once created \(asked for 1002\)/,
  });
  await t.throwsAsync(target.updateUser(anna.id, { colour: 'red' } as never), { instanceOf: TerminalError, message: 'extension 1001: unknown field "colour"' });
  await t.notThrowsAsync(target.updateUser(anna.id, { extension: '1001', lastName: 'Stone' } as never));
  t.is((await collect(target.listUsers()))[0].lastName, 'Stone');
});

test('updateUser enforces the same rules as createUser', async (t) => {
  const target = await openTarget(t, await tempDir(t));
  await target.createUser(userInput({ extension: '1002', firstName: 'Bob', lastName: 'Stone', email: 'bob@x.com', phones: [{ mac: '001565000001' }] }));
  const anna = await target.createUser(userInput());
  const refusals: Array<[object, RegExp]> = [
    [{ email: 'BOB@x.com' }, /extension 1001: e-mail bob@x.com is already used by extension 1002 \(Bob Stone\)/],
    [{ phones: [{ mac: '00-15-65-00-00-01' }] }, /MAC 001565000001 is already used by extension 1002/],
    [{ firstName: '' }, /first name is required/],
    [{ department: 'Nowhere' }, /department "Nowhere" does not exist/],
    [{ vmPin: '12' }, /voicemail PIN must have at least 4 digits/],
  ];
  for (const [changes, message] of refusals) await t.throwsAsync(target.updateUser(anna.id, changes), { instanceOf: TerminalError, message });
  await t.throwsAsync(target.updateUser('no-such-id', { lastName: 'x' }), { instanceOf: TerminalError, message: /no user with id no-such-id/ });
});

test('an update with identical values is not a write', async (t) => {
  const target = await openTarget(t, await tempDir(t));
  await target.ensureDepartments(['Sales']);
  const anna = await target.createUser(
    userInput({ email: 'anna@x.com', dids: ['+4930111'], extraDepartments: ['Sales'], phones: [{ mac: '001565aabbcc', model: 'T46U' }], options: { Ringtone: 'r1' }, vmPin: '4711' }),
  );
  await target.commit();
  const writes = target.writeCount();
  // The same values, spelled as a source might spell them.
  await target.updateUser(anna.id, {
    email: 'ANNA@x.com',
    dids: ['+4930111'],
    extraDepartments: ['Sales', 'DEFAULT'],
    phones: [{ mac: '00:15:65:AA:BB:CC', model: 'T46U' }],
    options: { Ringtone: 'r1' },
    vmPin: '4711',
    firstName: 'Anna',
    require2fa: false,
  });
  await target.updateUser(anna.id, { vmPin: null });
  await target.commit();
  t.is(target.writeCount(), writes);
  await target.updateUser(anna.id, { lastName: 'Stone' });
  await target.commit();
  t.is(target.writeCount(), writes + 1);
});

test('a commit with nothing changed writes nothing', async (t) => {
  const dir = await tempDir(t);
  const target = await openTarget(t, dir);
  await target.createUser(userInput());
  await target.commit();
  const writes = target.writeCount();
  const stat = await fs.stat(path.join(dir, 'pbx.json'));
  await target.commit();
  await target.commit();
  t.is(target.writeCount(), writes);
  t.is((await fs.stat(path.join(dir, 'pbx.json'))).mtimeMs, stat.mtimeMs);
});

test('changing the PIN bumps the credentials version', async (t) => {
  const target = await openTarget(t, await tempDir(t));
  const anna = await target.createUser(userInput());
  t.is(target.describeUser(anna.id)!.credentialsVersion, 1);
  await target.updateUser(anna.id, { vmPin: '86420' });
  t.is(target.describeUser(anna.id)!.credentialsVersion, 2);
  t.is((await collect(target.listUsers()))[0].vmPin, '86420');
});

test('deleteUsers reports a missing id instead of throwing, and frees the claims', async (t) => {
  const target = await openTarget(t, await tempDir(t));
  const anna = await target.createUser(userInput({ email: 'anna@x.com' }));
  const results = await target.deleteUsers([anna.id, 'gone']);
  t.deepEqual(results, [{ id: anna.id }, { id: 'gone', error: 'no user with id gone in the PBX store' }]);
  t.deepEqual(await collect(target.listUsers()), []);
  await t.notThrowsAsync(target.createUser(userInput({ email: 'anna@x.com' })));
});

test('createUsers checks and creates each user like createUser: a refused one is its Error, the others are created', async (t) => {
  const target = await openTarget(t, await tempDir(t));
  const results = await target.createUsers([
    userInput({ extension: '1001', email: 'a@example.com' }),
    userInput({ extension: '911' }), // emergency number
    userInput({ extension: '1002', email: 'a@example.com' }), // e-mail taken by the first of this very batch
    userInput({ extension: '1003', firstName: '' }), // first name required
    userInput({ extension: '1004', email: 'd@example.com' }),
  ]);
  t.is(results.length, 5);
  const [a, emergencyRefused, taken, unnamed, d] = results;
  t.false(a instanceof Error);
  t.false(d instanceof Error);
  t.is(a instanceof Error ? undefined : a.extension, '1001');
  t.true(emergencyRefused instanceof TerminalError);
  t.regex((emergencyRefused as Error).message, /emergency number/);
  t.true(taken instanceof ConflictError);
  t.regex((taken as Error).message, /e-mail a@example\.com is already used by extension 1001/);
  t.true(unnamed instanceof TerminalError);
  t.deepEqual((await collect(target.listUsers())).map((u) => [u.extension, u.id]), [
    ['1001', (a as { id: string }).id],
    ['1004', (d as { id: string }).id],
  ]);
});
