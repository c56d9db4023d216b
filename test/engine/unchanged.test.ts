import test from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import { createEngine, type Engine } from '../../src/engine/engine.js';
import { runSync, type SyncRequest } from '../../src/engine/sync.js';
import { EXIT } from '../../src/errors/index.js';
import { silentLogger } from '../../src/log.js';
import { newUserFields } from '../../src/model/index.js';
import { ROOT, makeWorkspace, person, threeCxCsv, type Workspace, type WorkspaceOptions } from '../helpers/workspace.js';

/** An engine whose target openings are counted: a skipped run never opens the target. */
async function countedEngine(ws: Workspace): Promise<{ engine: Engine; opened: () => number }> {
  const engine = await createEngine(await loadConfig(ws.config), { logger: silentLogger() });
  let opened = 0;
  const open = engine.openTarget.bind(engine);
  (engine as { openTarget: Engine['openTarget'] }).openTarget = async (o) => {
    opened++;
    return open(o);
  };
  return { engine, opened: () => opened };
}

async function setup(t: { teardown(fn: () => unknown): void }, options: WorkspaceOptions = {}) {
  const ws = await makeWorkspace({ mail: 'mail: { welcome: false, from: pbx@example.com }', ...options });
  const { engine, opened } = await countedEngine(ws);
  t.teardown(() => engine.close());
  const sync = (file: string, extra: Partial<SyncRequest> = {}) =>
    runSync(engine, { inputs: { inbox: file }, full: false, dryRun: false, approve: false, ...extra });
  return { ws, engine, opened, sync };
}

const rows = [person(1001, 'Anna', 'Smith', { DID: '+14155550100', Department: 'Sales' }), person(1002, 'Bob', 'Stone')];

test('the same file again is recognised: nothing read or compared, the target never opened, every user unchanged', async (t) => {
  const { ws, opened, sync } = await setup(t);
  const file = await ws.write('a.csv', threeCxCsv(rows));
  const first = await sync(file);
  t.is(first.exitCode, EXIT.ok);
  t.is(first.plan.summary.create, 2);
  const openedAfterFirst = opened();

  const again = await ws.write('again.csv', threeCxCsv(rows));
  const second = await sync(again);
  t.is(second.exitCode, EXIT.ok);
  t.is(opened(), openedAfterFirst, 'the target was not opened');
  t.deepEqual(second.plan.operations, []);
  t.is(second.plan.summary.unchanged, 2);
  t.regex(second.plan.notes?.join('\n') ?? '', /again\.csv is identical to the input applied by run .+ nothing to compare/);
  t.is(second.reads[0]?.desiredCount, 2);
});

test('a managed user changed by hand in the store: the same file again is compared and the change corrected', async (t) => {
  const { ws, engine, sync } = await setup(t);
  const file = await ws.write('a.csv', threeCxCsv(rows));
  await sync(file);
  const target = await engine.openTarget();
  let anna: string | undefined;
  for await (const u of target.listUsers()) if (u.extension === '1001') anna = u.id;
  await target.updateUser(anna!, { lastName: 'Edited' });
  await target.close();

  const second = await sync(file);
  t.deepEqual(
    second.plan.operations.map((o) => [o.kind, o.extension, o.fields]),
    [['update', '1001', ['lastName']]],
  );
  t.is(second.report?.summary.update, 1);
  t.falsy(second.plan.notes?.some((n) => n.includes('identical')));
});

test('an unmanaged user added to the store since: the same file is compared again (and still writes nothing)', async (t) => {
  const { ws, engine, opened, sync } = await setup(t);
  const file = await ws.write('a.csv', threeCxCsv(rows));
  await sync(file);
  const target = await engine.openTarget();
  await target.createUser({ ...newUserFields(), extension: '1500', firstName: 'Hand', lastName: 'Made', email: null, sendWelcome: false });
  await target.close();
  const before = opened();

  const second = await sync(file);
  t.is(opened(), before + 1, 'compared against the target');
  t.is(second.plan.summary.unchanged, 2);
  t.deepEqual(second.report?.applied, []);
  // That comparison converged again: the next identical file is skipped.
  const third = await sync(file);
  t.is(opened(), before + 1);
  t.is(third.plan.summary.unchanged, 2);
});

test('--full, a dry run, one changed byte and a changed mapping file all compare for real', async (t) => {
  const mapping = await fs.readFile(path.join(ROOT, 'mappings/3cx-csv.yml'), 'utf8');
  const ws0 = await makeWorkspace();
  const mappingCopy = await ws0.write('mapping.yml', mapping);
  const { ws, opened, sync } = await setup(t, { mapping: mappingCopy });
  const file = await ws.write('a.csv', threeCxCsv(rows));
  await sync(file);
  const compared = async (req: () => Promise<unknown>): Promise<boolean> => {
    const before = opened();
    await req();
    return opened() > before;
  };
  t.true(await compared(() => sync(file, { full: true })), '--full');
  t.true(await compared(() => sync(file, { dryRun: true })), 'dry run');
  t.false(await compared(() => sync(file)), 'identical again: skipped');
  const changed = await ws.write('b.csv', threeCxCsv([rows[0]!, { ...rows[1]!, LastName: 'Stones' }]));
  t.true(await compared(() => sync(changed)), 'one changed cell');
  await sync(file);
  t.false(await compared(() => sync(file)));
  await fs.writeFile(mappingCopy, mapping + '\n# edited\n');
  // The running engine compiles the edited file: another fingerprint, so the same input is compared...
  t.true(await compared(() => sync(file)), 'a changed mapping file is compared');
  // ...once: that run recorded the new fingerprint.
  t.false(await compared(() => sync(file)), 'identical again under the edited mapping: skipped');
});

test('a file with a rejected row is never skipped: the row is reported again with exit 4', async (t) => {
  const { ws, opened, sync } = await setup(t);
  const file = await ws.write('a.csv', threeCxCsv([...rows, person(911, 'Emergency', 'Number')]));
  const first = await sync(file);
  t.is(first.exitCode, EXIT.partial);
  const before = opened();
  const second = await sync(file);
  t.is(opened(), before + 1);
  t.is(second.exitCode, EXIT.partial);
  t.is(second.plan.issues.length, 1);
  t.regex(second.plan.issues[0]!.message, /911/);
});

test('a snapshot that disabled a leaver (grace period running) is compared again every time', async (t) => {
  const { ws, opened, sync } = await setup(t, { mode: 'snapshot', safety: 'safety: { maxDisablePercent: 100, maxDisables: 10, minSourceRatio: 0.5, removal: { action: delete, graceDays: 30 } }' });
  const all = await ws.write('all.csv', threeCxCsv([...rows, person(1003, 'Cleo', 'Park')]));
  await sync(all);
  const fewer = await ws.write('fewer.csv', threeCxCsv(rows));
  const first = await sync(fewer);
  t.is(first.plan.held, null);
  t.is(first.report?.summary.disable, 1);
  const before = opened();
  const second = await sync(fewer);
  t.is(opened(), before + 1, 'compared: the grace period may have run out');
  t.deepEqual(second.report?.applied, []);
});

test('the record of a converged input survives a restart (state.json) and holds no secret', async (t) => {
  const { ws, sync } = await setup(t);
  const file = await ws.write('a.csv', threeCxCsv([person(1001, 'Anna', 'Smith', { VMPIN: '90817' })]));
  await sync(file);
  const state = await fs.readFile(path.join(ws.stateDir, 'state.json'), 'utf8');
  t.regex(state, /"converged":\{"inbox":\{"fingerprint":"[0-9a-f]{64}"/);
  t.false(state.includes('90817'));
  const { engine, opened } = await countedEngine(ws);
  t.teardown(() => engine.close());
  const again = await runSync(engine, { inputs: { inbox: file }, full: false, dryRun: false, approve: false });
  t.is(opened(), 0);
  t.is(again.plan.summary.unchanged, 1);
});
