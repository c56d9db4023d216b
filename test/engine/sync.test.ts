import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { loadConfig } from '../../src/config/load.js';
import { createEngine, type Engine } from '../../src/engine/engine.js';
import { exportUsers } from '../../src/engine/export.js';
import { runSync } from '../../src/engine/sync.js';
import { ConfigError, EXIT } from '../../src/errors/index.js';
import { silentLogger } from '../../src/log.js';
import type { Target } from '../../src/targets/types.js';
import { newUserFields, type PbxUser } from '../../src/model/index.js';
import { ROOT, makeWorkspace, person, staff, threeCxCsv, type CsvRow, type Workspace } from '../helpers/workspace.js';

async function engineFor(configFile: string): Promise<Engine> {
  return createEngine(await loadConfig(configFile), { logger: silentLogger() });
}

/** Opens the engine's target through a wrapper that counts the writes every opened target made. */
function countWrites(engine: Engine): { total: () => number } {
  const opened: Target[] = [];
  const open = engine.openTarget.bind(engine);
  let closedWrites = 0;
  (engine as { openTarget: Engine['openTarget'] }).openTarget = async (o) => {
    const t = await open(o);
    opened.push(t);
    const close = t.close.bind(t);
    t.close = async () => {
      closedWrites += t.writeCount();
      await close();
    };
    return t;
  };
  return { total: () => closedWrites };
}

/** One sync of the rows as a file named `name` (the source's input, as the drop folder would pass it). */
function syncOfFile(engine: Engine, ws: Workspace): (name: string, rows: CsvRow[]) => ReturnType<typeof runSync> {
  return async (name, rows) => runSync(engine, { inputs: { inbox: await ws.write(name, threeCxCsv(rows)) }, full: false, dryRun: false, approve: false });
}

/** A snapshot source's engine, a sync of rows as a file, and its `<stateDir>/plans/` folder (listed, aged). */
async function heldPlansSetup(t: ExecutionContext) {
  const ws = await makeWorkspace({ mode: 'snapshot' });
  const engine = await engineFor(ws.config);
  t.teardown(() => engine.close());
  const plansDir = path.join(ws.stateDir, 'plans');
  const planFiles = async () => (await fs.readdir(plansDir).catch(() => [] as string[])).sort();
  /** Sets every plan file's mtime `days` back. */
  const age = async (days: number) => {
    const at = new Date(Date.now() - days * 86_400_000);
    for (const name of await planFiles()) await fs.utimes(path.join(plansDir, name), at, at);
  };
  return { ws, engine, sync: syncOfFile(engine, ws), plansDir, planFiles, age };
}

async function users(engine: Engine): Promise<PbxUser[]> {
  const t = await engine.openTarget({ readOnly: true });
  const out: PbxUser[] = [];
  for await (const u of t.listUsers()) out.push(u);
  await t.close();
  return out;
}

async function handMadeUser(engine: Engine): Promise<PbxUser> {
  const t = await engine.openTarget();
  const u = await t.createUser({
    ...newUserFields(),
    extension: '1001',
    firstName: 'Hand',
    lastName: 'Made',
    email: 'hand@example.com',
    sendWelcome: false,
  });

  await t.commit();
  await t.close();
  return u;
}

test('a second identical sync writes nothing to the store (counted writes)', async (t) => {
  const ws = await makeWorkspace();
  const engine = await engineFor(ws.config);
  t.teardown(() => engine.close());
  const writes = countWrites(engine);
  const file = await ws.write('a.csv', threeCxCsv([person(1001, 'Anna', 'Smith', { DID: '+14155550100', MAC: '001565AABBCC', Department: 'Sales' }), person(1002, 'Bob', 'Stone')]));
  const first = await runSync(engine, { inputs: { inbox: file }, full: false, dryRun: false, approve: false });
  t.is(first.exitCode, EXIT.ok);
  const afterFirst = writes.total();
  t.true(afterFirst > 0);
  const second = await runSync(engine, { inputs: { inbox: file }, full: false, dryRun: false, approve: false });
  t.is(second.exitCode, EXIT.ok);
  t.is(second.plan.summary.unchanged, 2);
  t.is(writes.total(), afterFirst, 'no store write on the no-op run');
});

test('an unmanaged user is never changed or removed: a row naming its extension is a conflict, a snapshot without it leaves it alone', async (t) => {
  const ws = await makeWorkspace({ mode: 'snapshot' });
  const engine = await engineFor(ws.config);
  t.teardown(() => engine.close());
  const manual = await handMadeUser(engine);

  const clash = await ws.write('clash.csv', threeCxCsv([person(1001, 'Anna', 'Smith'), person(1002, 'Bob', 'Stone')]));
  const r1 = await runSync(engine, { inputs: { inbox: clash }, full: false, dryRun: false, approve: false });
  t.is(r1.exitCode, EXIT.partial);
  const conflict = r1.plan.operations.find((o) => o.kind === 'conflict')!;
  t.is(conflict.extension, '1001');
  t.regex(conflict.reason, /unmanaged/);
  let now = await users(engine);
  t.deepEqual(now.find((u) => u.id === manual.id), manual, 'the hand-made user is exactly as it was');

  const without = await ws.write('without.csv', threeCxCsv([person(1002, 'Bob', 'Stone')]));
  const r2 = await runSync(engine, { inputs: { inbox: without }, full: false, dryRun: false, approve: false });
  t.is(r2.exitCode, EXIT.ok);
  t.false(r2.plan.operations.some((o) => o.userId === manual.id));
  now = await users(engine);
  t.deepEqual(now.find((u) => u.id === manual.id), manual);
});

test('an adoption rule lets a row claim the unmanaged user with its extension (adopt, then managed)', async (t) => {
  const mapping = (await fs.readFile(path.join(ROOT, 'mappings/3cx-csv.yml'), 'utf8')).replace(/^adopt: \[\]$/m, 'adopt: [extension]');
  t.not(mapping, await fs.readFile(path.join(ROOT, 'mappings/3cx-csv.yml'), 'utf8'));
  const ws0 = await makeWorkspace();
  const mappingFile = await ws0.write('adopting.yml', mapping.replace(/\$schema=[^\n]*/, ''));
  const ws = await makeWorkspace({ mapping: mappingFile });
  const engine = await engineFor(ws.config);
  t.teardown(() => engine.close());
  const manual = await handMadeUser(engine);
  const file = await ws.write('a.csv', threeCxCsv([person(1001, 'Hand', 'Made', { EmailAddress: 'hand@example.com', Department: 'DEFAULT', MobileNumber: '+14155550111' })]));
  const r = await runSync(engine, { inputs: { inbox: file }, full: false, dryRun: false, approve: false });
  t.is(r.exitCode, EXIT.ok);
  const adopt = r.plan.operations.find((o) => o.kind === 'adopt')!;
  t.is(adopt.userId, manual.id);
  t.true(engine.state.bindings().some((b) => b.userId === manual.id && b.key.anchor === '1001'));
  const after = (await users(engine)).find((u) => u.id === manual.id)!;
  t.is(after.mobile, '+14155550111');
});

test('an edited mapping file applies from the next run of the same engine; a broken edit fails runs, named, until fixed', async (t) => {
  const shipped = await fs.readFile(path.join(ROOT, 'mappings/3cx-csv.yml'), 'utf8');
  const ws0 = await makeWorkspace();
  const mappingFile = await ws0.write('mapping.yml', shipped);
  const ws = await makeWorkspace({ mapping: mappingFile });
  const engine = await engineFor(ws.config);
  t.teardown(() => engine.close());
  const file = await ws.write('a.csv', threeCxCsv([person(1001, 'Anna', 'Smith', { Department: '' }), person(1002, 'Bob', 'Stone', { Department: 'Sales' })]));
  const sync = () => runSync(engine, { inputs: { inbox: file }, full: false, dryRun: false, approve: false });
  t.is((await sync()).plan.summary.create, 2);
  t.deepEqual((await users(engine)).map((u) => [u.extension, u.department]), [['1001', 'DEFAULT'], ['1002', 'Sales']]);

  // The admin edits the mapping while the engine runs: rows without a department now go to Support.
  await fs.writeFile(mappingFile, shipped.replace('  default: DEFAULT\n', '  default: Support\n'));
  const edited = await sync();
  t.deepEqual(edited.plan.operations.map((o) => [o.kind, o.extension, o.fields]), [['update', '1001', ['department']]]);
  t.deepEqual((await users(engine)).map((u) => [u.extension, u.department]), [['1001', 'Support'], ['1002', 'Sales']]);

  // A broken edit: the run fails with the file, line and field, is recorded for `status`, and changes nothing.
  await fs.writeFile(mappingFile, shipped.replace('  create: true\n', '  create: maybe\n'));
  const err = await t.throwsAsync(sync, { instanceOf: ConfigError });
  t.regex(err!.message, /mapping\.yml:\d+:\d+: department\.create: must be boolean/);
  t.regex(engine.state.runs()[0]?.error ?? '', /mapping\.yml has 1 problem/);
  t.deepEqual((await users(engine)).map((u) => [u.extension, u.department]), [['1001', 'Support'], ['1002', 'Sales']]);

  // Fixed back to the first version: the next run applies it.
  await fs.writeFile(mappingFile, shipped);
  const fixed = await sync();
  t.is(fixed.exitCode, EXIT.ok);
  t.deepEqual((await users(engine)).map((u) => [u.extension, u.department]), [['1001', 'DEFAULT'], ['1002', 'Sales']]);
});

test('held plans: the same plan held again is not saved again; a newer one replaces the older in status; a run that changes the PBX ends the hold', async (t) => {
  const { engine, sync, planFiles } = await heldPlansSetup(t);
  const held = () => engine.state.heldPlans().map((p) => [p.runId, p.sources]);

  t.is((await sync('all.csv', staff(20))).exitCode, EXIT.ok);
  const first = await sync('half.csv', staff(10));
  t.is(first.exitCode, EXIT.held);
  t.deepEqual(await planFiles(), [`${first.runId}.inbox.csv`, `${first.runId}.json`]);

  // The same rows again (another file name, as a nightly export would be): the same plan, not saved again.
  const again = await sync('half-tonight.csv', staff(10));
  t.is(again.exitCode, EXIT.held);
  t.is(again.heldPlanFile, first.heldPlanFile, 'the plan the admin was told about is still the one to approve');
  t.deepEqual(held(), [[first.runId, ['inbox']]]);
  t.deepEqual(await planFiles(), [`${first.runId}.inbox.csv`, `${first.runId}.json`]);
  // Its file deleted by hand: the same plan is saved anew rather than pointing at nothing.
  await fs.rm(first.heldPlanFile!);
  const anew = await sync('half-again.csv', staff(10));
  t.not(anew.heldPlanFile, first.heldPlanFile);
  await t.notThrowsAsync(fs.access(anew.heldPlanFile!));
  t.deepEqual(held(), [[anew.runId, ['inbox']]]);

  // Other rows: another plan, which replaces the first in status (the first one's file stays, for `apply` to refuse).
  const second = await sync('eleven.csv', staff(11));
  t.is(second.exitCode, EXIT.held);
  t.deepEqual(held(), [[second.runId, ['inbox']]]);
  t.deepEqual(await planFiles(), [`${first.runId}.inbox.csv`, `${anew.runId}.inbox.csv`, `${anew.runId}.json`, `${second.runId}.inbox.csv`, `${second.runId}.json`].sort());

  // A run that changes nothing leaves the held plan approvable.
  const same = await sync('all-reordered.csv', staff(20).reverse());
  t.is(same.exitCode, EXIT.ok);
  t.deepEqual(same.report?.applied, [], 'compared (other bytes), nothing to change');
  t.is(engine.state.held()?.runId, second.runId);

  // A run that changes the PBX: the held plan's basis is gone, and it is no longer held.
  const grown = await sync('grown.csv', staff(21));
  t.is(grown.exitCode, EXIT.ok);
  t.is(grown.report?.applied.length, 1);
  t.is(engine.state.held(), undefined);
});

test('saved plans no longer held are deleted after safety.keepPlansDays by the next run; the plan still held stays whatever its age', async (t) => {
  const { engine, sync, planFiles, age } = await heldPlansSetup(t);
  t.is(engine.config.safety.keepPlansDays, 30, 'the default');

  t.is((await sync('all.csv', staff(20))).exitCode, EXIT.ok);
  const first = await sync('half.csv', staff(10));
  const second = await sync('eleven.csv', staff(11));
  t.is(second.exitCode, EXIT.held);
  t.deepEqual(engine.state.heldPlans().map((p) => p.runId), [second.runId]);
  await age(29);
  t.is((await sync('all-again.csv', staff(20))).exitCode, EXIT.ok);
  t.is((await planFiles()).length, 4, 'younger than 30 days: all kept');

  await age(31);
  t.is((await sync('all-once-more.csv', staff(20))).exitCode, EXIT.ok);
  t.deepEqual(await planFiles(), [`${second.runId}.inbox.csv`, `${second.runId}.json`], `${first.runId} is no longer held`);
  t.is(engine.state.held()?.runId, second.runId);

  // Held for 31 days, then its hold ends (a run changes the PBX): the 30 days count from now, not from its saving.
  const grown = await sync('grown.csv', staff(21));
  t.is(grown.report?.applied.length, 1);
  t.is(engine.state.held(), undefined);
  t.deepEqual(await planFiles(), [`${second.runId}.inbox.csv`, `${second.runId}.json`]);
  await age(31);
  t.is((await sync('grown-again.csv', staff(21))).exitCode, EXIT.ok);
  t.deepEqual(await planFiles(), []);
});

test('a held plan approved long after it was saved stays keepPlansDays after its approval', async (t) => {
  const { engine, sync, plansDir, planFiles, age } = await heldPlansSetup(t);
  t.is((await sync('all.csv', staff(20))).exitCode, EXIT.ok);
  const held = await sync('half.csv', staff(10));
  t.is(held.exitCode, EXIT.held);
  await age(40);

  const approved = await runSync(engine, { inputs: { inbox: path.join(plansDir, `${held.runId}.inbox.csv`) }, full: false, dryRun: false, approve: true });
  t.is(approved.exitCode, EXIT.ok);
  t.is(approved.report?.applied.length, 10);
  t.deepEqual(await planFiles(), [`${held.runId}.inbox.csv`, `${held.runId}.json`], 'kept: released just now');
  t.is(engine.state.held(), undefined);
});

test('the 3CX Disabled column: a row created disabled, a later Disabled=1 disables (no grace period), its export re-imports as a no-op', async (t) => {
  // One disable of three users is over any percentage threshold; the guard counts these disables too.
  const ws = await makeWorkspace({ mode: 'snapshot', safety: 'safety: { maxDisablePercent: 100, maxDisables: 10, minSourceRatio: 0.5, removal: { action: delete, graceDays: 30 } }' });
  const engine = await engineFor(ws.config);
  t.teardown(() => engine.close());
  const sync = syncOfFile(engine, ws);
  const first = await sync('a.csv', [person(1001, 'Anna', 'Smith', { Disabled: '1' }), person(1002, 'Bob', 'Stone', { Disabled: '0' }), person(1003, 'Cy', 'Doe')]);
  t.is(first.exitCode, EXIT.ok);
  const enabledOf = async () => Object.fromEntries((await users(engine)).map((u) => [u.extension, u.enabled]));
  t.deepEqual(await enabledOf(), { '1001': false, '1002': true, '1003': true });

  const second = await sync('b.csv', [person(1001, 'Anna', 'Smith', { Disabled: '1' }), person(1002, 'Bob', 'Stone', { Disabled: '1' }), person(1003, 'Cy', 'Doe')]);
  t.deepEqual(second.plan.operations.map((o) => `${o.kind} ${o.extension}`), ['disable 1002']);
  t.regex(second.plan.operations[0].reason, /^marked disabled in inbox \(.*b\.csv, line 3\)$/);
  t.deepEqual(await enabledOf(), { '1001': false, '1002': false, '1003': true });
  t.is(engine.state.binding({ source: 'inbox', anchor: '1002' })?.disabledAt, undefined, 'not leaving: no grace period towards deletion');

  const out: string[] = [];
  await exportUsers(engine, 'csv', new Writable({ write: (chunk, _enc, done) => (out.push(String(chunk)), done()) }));
  const exported = out.join('');
  t.regex(exported, /\r?\n1002,Bob,Stone,[^\r\n]*/);
  const again = await runSync(engine, { inputs: { inbox: await ws.write('export.csv', exported) }, full: false, dryRun: false, approve: false });
  t.deepEqual(again.plan.operations, []);
  t.is(again.plan.summary.unchanged, 3);

  // 1003 disabled by hand: a row without a Disabled value (the mapping's `default: null`) leaves it so.
  const target = await engine.openTarget();
  await target.updateUser((await users(engine)).find((u) => u.extension === '1003')!.id, { enabled: false });
  await target.commit();
  await target.close();
  const back = await sync('c.csv', [person(1001, 'Anna', 'Smith', { Disabled: '0' }), person(1002, 'Bob', 'Stone', { Disabled: '1' }), person(1003, 'Cy', 'Doe')]);
  t.deepEqual(back.plan.operations.map((o) => `${o.kind} ${o.extension} ${o.reason.split(' in ')[0]}`), ['enable 1001 marked enabled']);
  t.deepEqual(await enabledOf(), { '1001': true, '1002': false, '1003': false });
});

/** The store's users as `extension first last email` lines, in extension order. */
async function roster(engine: Engine): Promise<string[]> {
  return (await users(engine)).map((u) => `${u.extension} ${u.firstName} ${u.lastName} ${u.email ?? '-'}`).sort();
}

/** `pbxsync export --format csv`, as text. */
async function exported(engine: Engine): Promise<string> {
  const out: string[] = [];
  await exportUsers(engine, 'csv', new Writable({ write: (chunk, _enc, done) => (out.push(String(chunk)), done()) }));
  return out.join('');
}

test('an empty Number gets the next free extension (skipping emergency and reserved numbers); the same row later is the same user', async (t) => {
  // 911 is an emergency number inside the range and 902 reserved: neither is ever allocated.
  const ws = await makeWorkspace();
  const config = (await fs.readFile(ws.config, 'utf8'))
    .replace('    - { from: "1000", to: "1999" }\n  reserved: []', '    - { from: "900", to: "999" }\n  reserved: [{ from: "902", to: "902" }]')
    .replace('emergency: ["911", "112", "15", "17", "18", "999"]', 'emergency: ["901", "911", "112", "15", "17", "18", "999"]');
  await fs.writeFile(ws.config, config);
  const engine = await engineFor(ws.config);
  t.teardown(() => engine.close());
  const sync = syncOfFile(engine, ws);

  // A mixed file: one numbered row, two without a Number, one with neither Number nor e-mail.
  const first = await sync('a.csv', [
    person(900, 'Anna', 'Smith'),
    person('', 'Bob', 'Stone'),
    person('', 'Cy', 'Doe', { EmailAddress: 'CY@example.com' }),
    person('', 'Nobody', 'Known', { EmailAddress: '' }),
  ]);
  t.is(first.exitCode, EXIT.partial);
  t.deepEqual(first.plan.issues.map((i) => [path.basename(i.file ?? ''), i.line, i.field]), [['a.csv', 5, 'EmailAddress']]);
  t.regex(first.plan.issues[0].message, /^no Number and no EmailAddress/);
  t.deepEqual(await roster(engine), ['900 Anna Smith anna.smith@example.com', '903 Bob Stone bob.stone@example.com', '904 Cy Doe cy@example.com']);
  t.regex(first.plan.operations.find((o) => o.extension === '903')!.reason, /; extension allocated from 900-999$/);
  t.deepEqual(
    engine.state.bindings().map((b) => `${b.key.anchor} ${b.extension}`).sort(),
    ['900 900', 'bob.stone@example.com 903', 'cy@example.com 904'],
  );

  // The same rows again, without Numbers, next to a newcomer: updates of the same users, no second Bob.
  const second = await sync('b.csv', [person('', 'Bob', 'Stone-Jones', { EmailAddress: 'bob.stone@example.com' }), person('', 'Cy', 'Doe', { EmailAddress: 'cy@example.com' }), person('', 'Dan', 'Eve')]);
  t.is(second.exitCode, EXIT.ok);
  t.deepEqual(second.plan.operations.map((o) => `${o.kind} ${o.extension}`), ['update 903', 'create 905']);
  t.is(second.plan.summary.unchanged, 1);
  t.deepEqual(await roster(engine), [
    '900 Anna Smith anna.smith@example.com',
    '903 Bob Stone-Jones bob.stone@example.com',
    '904 Cy Doe cy@example.com',
    '905 Dan Eve dan.eve@example.com',
  ]);

  // A numbered user's row without its Number (e-mail only) is that user too: its extension stays.
  const third = await sync('c.csv', [person('', 'Anna', 'Smith-Lee', { EmailAddress: 'anna.smith@example.com' })]);
  t.deepEqual(third.plan.operations.map((o) => `${o.kind} ${o.extension} ${o.key?.anchor}`), ['update 900 900']);
});

for (const keyColumn of ['auto', 'EmailAddress']) {
  test(`users keyed by e-mail (keyColumn ${keyColumn}): their export, Numbers filled in, re-imports as a no-op without a store write`, async (t) => {
    const ws = await makeWorkspace({ mode: 'snapshot' });
    await fs.writeFile(ws.config, (await fs.readFile(ws.config, 'utf8')).replace('      mode: snapshot\n', `      mode: snapshot\n      keyColumn: ${keyColumn}\n`));
    const engine = await engineFor(ws.config);
    t.teardown(() => engine.close());
    const writes = countWrites(engine);
    const sync = syncOfFile(engine, ws);
    const noNumbers = [person('', 'Anna', 'Smith', { Department: 'Sales' }), person('', 'Bob', 'Stone'), person('', 'Cy', 'Doe')];
    t.is((await sync('a.csv', noNumbers)).exitCode, EXIT.ok);
    t.deepEqual(engine.state.bindings().map((b) => b.key.anchor).sort(), ['anna.smith@example.com', 'bob.stone@example.com', 'cy.doe@example.com']);
    const before = await roster(engine);
    const text = await exported(engine);
    t.regex(text, /\r?\n1000,Anna,Smith,anna\.smith@example\.com,/);

    const afterFirst = writes.total();
    const again = await runSync(engine, { inputs: { inbox: await ws.write('export.csv', text) }, full: false, dryRun: false, approve: false });
    t.is(again.exitCode, EXIT.ok);
    t.deepEqual(again.plan.operations, []);
    t.is(again.plan.summary.unchanged, 3);
    t.is(writes.total(), afterFirst, 'no store write');
    t.deepEqual(await roster(engine), before);
    t.deepEqual(engine.state.bindings().map((b) => b.key.anchor).sort(), ['anna.smith@example.com', 'bob.stone@example.com', 'cy.doe@example.com']);

    // The export with a new e-mail for 1001: by its number (auto) the same user, renamed; by e-mail a new identity
    // whose extension is taken.
    const renamed = text.replace('bob.stone@example.com', 'robert.stone@example.com');
    const r = await runSync(engine, { inputs: { inbox: await ws.write('renamed.csv', renamed) }, full: false, dryRun: false, approve: false });
    if (keyColumn === 'auto') {
      t.deepEqual(r.plan.operations.map((o) => `${o.kind} ${o.extension} ${o.fields?.join(',')}`), ['update 1001 email']);
    } else {
      t.true(r.plan.operations.some((o) => o.kind === 'conflict' && o.extension === '1001'));
    }
  });
}
