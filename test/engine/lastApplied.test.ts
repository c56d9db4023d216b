import test, { type ExecutionContext } from 'ava';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { moveWithReport } from '../../connectors/csv/dropFolder.js';
import { loadConfig } from '../../src/config/load.js';
import { processDroppedFile } from '../../src/daemon/run.js';
import { createEngine, type Engine } from '../../src/engine/engine.js';
import { lastAppliedCopy } from '../../src/engine/lastApplied.js';
import { approvalRequest, type SavedPlan } from '../../src/engine/plans.js';
import { runSync, type SyncOutcome } from '../../src/engine/sync.js';
import { EXIT } from '../../src/errors/index.js';
import { silentLogger } from '../../src/log.js';
import type { PbxUser } from '../../src/model/index.js';
import { makeWorkspace, person, staff, threeCxCsv, type CsvRow, type Workspace, type WorkspaceOptions } from '../helpers/workspace.js';

async function setup(t: ExecutionContext, options: WorkspaceOptions = {}) {
  const ws = await makeWorkspace({ mail: 'mail: { welcome: false, from: pbx@example.com }', ...options });
  const engine = await createEngine(await loadConfig(ws.config), { logger: silentLogger() });
  t.teardown(() => engine.close());
  const source = engine.config.sources[0]!;
  /** What the daemon's watcher does with a file dropped into inbox/: run it, then move it with its report. */
  const drop = async (name: string, rows: CsvRow[]): Promise<{ outcome: 'processed' | 'failed'; movedTo: string }> => {
    const file = await ws.write(`inbox/${name}`, threeCxCsv(rows));
    const result = await processDroppedFile(engine, source, file);
    const { movedTo } = await moveWithReport(file, result.status, result.report, source.csv!);
    return { outcome: result.status, movedTo };
  };
  const full = () => runSync(engine, { full: true, dryRun: false, approve: false });
  return { ws, engine, drop, full };
}

async function users(engine: Engine): Promise<PbxUser[]> {
  const target = await engine.openTarget({ readOnly: true });
  const out: PbxUser[] = [];
  for await (const u of target.listUsers()) out.push(u);
  await target.close();
  return out;
}

async function editByHand(engine: Engine, extension: string, fields: Partial<PbxUser>): Promise<void> {
  const target = await engine.openTarget();
  for await (const u of target.listUsers()) if (u.extension === extension) await target.updateUser(u.id, fields);
  await target.commit();
  await target.close();
}

/** Nothing to do: every count but `unchanged` is zero. */
function changedNothing(t: ExecutionContext, outcome: SyncOutcome): void {
  t.is(outcome.exitCode, EXIT.ok);
  const { unchanged: _unchanged, ...counts } = outcome.plan.summary;
  t.deepEqual(counts, { create: 0, update: 0, disable: 0, enable: 0, delete: 0, adopt: 0, conflicts: 0, errors: 0 });
}

const sha256 = async (file: string) => crypto.createHash('sha256').update(await fs.readFile(file)).digest('hex');

test('a dropped file moved to processed/, then a full run: drift on a managed user is corrected from the copy kept in the state folder', async (t) => {
  const { ws, engine, drop, full } = await setup(t);
  const { outcome, movedTo } = await drop('staff.csv', [person(1001, 'Anna', 'Smith'), person(1002, 'Bob', 'Stone')]);
  t.is(outcome, 'processed');

  const record = engine.state.lastApplied('inbox');
  t.like(record, { file: path.join(ws.inbox, 'staff.csv'), sha256: await sha256(movedTo) });
  const copy = lastAppliedCopy(engine, 'inbox');
  t.is(copy, path.join(ws.stateDir, 'last-applied', 'inbox.csv'));
  t.deepEqual(await fs.readFile(copy), await fs.readFile(movedTo));
  t.is((await fs.stat(copy)).mode & 0o777, 0o600, 'state is readable by pbxsync alone');

  await editByHand(engine, '1001', { firstName: 'Hacked' });
  const night = await full();
  t.is(night.exitCode, EXIT.ok);
  t.is(night.plan.summary.update, 1);
  t.is((await users(engine)).find((u) => u.extension === '1001')?.firstName, 'Anna');
  t.true(
    night.plan.notes?.some((n) => n.startsWith('inbox: compared with staff.csv, the input applied last (run ') && n.endsWith(`kept as ${copy}`)),
    JSON.stringify(night.plan.notes),
  );
  t.deepEqual(engine.state.lastApplied('inbox'), record, 'a full run re-reading the copy records nothing new');
});

test('a held snapshot sent to failed/ and approved with its saved plan: the next full run changes nothing (the older processed/ file is not re-applied)', async (t) => {
  const { ws, engine, drop, full } = await setup(t, { mode: 'snapshot' });
  t.is((await drop('all.csv', staff(20))).outcome, 'processed');

  const held = await drop('half.csv', staff(10));
  t.is(held.outcome, 'failed');
  t.is(path.dirname(held.movedTo), path.join(ws.inbox, 'failed'));
  const planFile = engine.state.held()!.file;
  const saved = JSON.parse(await fs.readFile(planFile, 'utf8')) as SavedPlan;
  const approved = await runSync(engine, approvalRequest(saved, planFile));
  t.is(approved.exitCode, EXIT.ok);
  t.is(approved.plan.summary.disable, 10);
  t.is(engine.state.lastApplied('inbox')?.sha256, await sha256(held.movedTo), 'the approved input is the one applied last');

  const night = await full();
  changedNothing(t, night);
  t.is(night.plan.summary.unchanged, 10);
  t.is((await users(engine)).filter((u) => u.enabled).length, 10, 'the approved removals stay');
});

test('a dry run, a held plan and a file with nothing usable in it leave the record as it was', async (t) => {
  const { ws, engine, drop } = await setup(t, { mode: 'snapshot' });
  await drop('all.csv', staff(20));
  const record = engine.state.lastApplied('inbox');
  t.truthy(record);

  const half = await ws.write('half.csv', threeCxCsv(staff(10)));
  const dry = await runSync(engine, { inputs: { inbox: half }, full: false, dryRun: true, approve: false });
  t.is(dry.plan.summary.disable, 10);
  t.deepEqual(engine.state.lastApplied('inbox'), record, 'dry run');

  const held = await runSync(engine, { inputs: { inbox: half }, full: false, dryRun: false, approve: false });
  t.is(held.exitCode, EXIT.held);
  t.deepEqual(engine.state.lastApplied('inbox'), record, 'held plan');

  // Every row rejected (no first name): the daemon sends it to failed/, nothing of it applied.
  const broken = await drop('broken.csv', staff(3).map((r) => ({ ...r, FirstName: '' })));
  t.is(broken.outcome, 'failed');
  t.deepEqual(engine.state.lastApplied('inbox'), record, 'unusable file');
  const empty = await drop('empty.csv', []);
  t.is(empty.outcome, 'failed');
  t.deepEqual(engine.state.lastApplied('inbox'), record, 'file without a header');

  t.deepEqual(await fs.readFile(lastAppliedCopy(engine, 'inbox')), Buffer.from(threeCxCsv(staff(20))), 'the copy is still all.csv');
});

test('a state folder from before the record: a full run reconciles nothing, whatever processed/ holds, and says why', async (t) => {
  const { ws, engine, full } = await setup(t, { mode: 'snapshot' });
  await ws.write('inbox/processed/old.csv', threeCxCsv(staff(5)));
  const night = await full();
  changedNothing(t, night);
  t.deepEqual(night.plan.operations, []);
  t.regex(night.reads[0]?.note ?? '', /no input recorded as applied by this source .*nothing to reconcile until a file is applied/);
  t.is(engine.state.lastApplied('inbox'), undefined);
});

test('a copy that cannot be kept forgets the record: the full run then reconciles nothing rather than re-apply an older input', async (t) => {
  const { ws, engine, drop, full } = await setup(t);
  await drop('monday.csv', [person(1001, 'Anna', 'Smith')]);
  t.truthy(engine.state.lastApplied('inbox'));
  // Something in the way of the copy's folder.
  await fs.rm(path.join(ws.stateDir, 'last-applied'), { recursive: true });
  await fs.writeFile(path.join(ws.stateDir, 'last-applied'), 'not a folder');

  t.is((await drop('tuesday.csv', [person(1001, 'Annabel', 'Smith')])).outcome, 'processed');
  t.is(engine.state.lastApplied('inbox'), undefined);
  const night = await full();
  changedNothing(t, night);
  t.is((await users(engine)).find((u) => u.extension === '1001')?.firstName, 'Annabel');
});

test('a full run held by a threshold saves a copy of the recorded input with its plan; approving it applies what was reviewed', async (t) => {
  const { ws, engine, drop, full } = await setup(t, { mode: 'snapshot', safety: 'safety:\n  maxDisables: 5\n  maxDisablePercent: 100\n  removal:\n    action: disable\n    graceDays: 30' });
  await drop('all.csv', staff(10));
  const half = await ws.write('half.csv', threeCxCsv(staff(4)));
  t.is((await runSync(engine, { inputs: { inbox: half }, full: false, dryRun: false, approve: true })).plan.summary.disable, 6);
  // Someone enables the six leavers again by hand; the nightly run would disable them again: over maxDisables.
  for (const u of await users(engine)) if (!u.enabled) await editByHand(engine, u.extension, { enabled: true });

  const night = await full();
  t.is(night.exitCode, EXIT.held);
  const saved = JSON.parse(await fs.readFile(night.heldPlanFile!, 'utf8')) as SavedPlan;
  const kept = saved.request.inputs?.inbox;
  t.is(path.dirname(kept ?? ''), path.join(ws.stateDir, 'plans'));
  t.deepEqual(await fs.readFile(kept!), await fs.readFile(half));

  const approved = await runSync(engine, approvalRequest(saved, night.heldPlanFile!));
  t.is(approved.exitCode, EXIT.ok);
  t.is(approved.plan.summary.disable, 6);
  t.is((await users(engine)).filter((u) => u.enabled).length, 4);
  t.is(engine.state.lastApplied('inbox')?.sha256, await sha256(half));
});

test('the same input again, skipped as already applied, is the input applied last once more when another was applied in between', async (t) => {
  const { ws, engine } = await setup(t);
  const sync = (file: string, approve = false) => runSync(engine, { inputs: { inbox: file }, full: false, dryRun: false, approve });
  const both = await ws.write('both.csv', threeCxCsv([person(1001, 'Anna', 'Smith'), person(1002, 'Bob', 'Stone')]));
  await sync(both);
  // An approved run compares for real and is not remembered as converged; this one changed nothing in the PBX.
  const anna = await ws.write('anna.csv', threeCxCsv([person(1001, 'Anna', 'Smith')]));
  changedNothing(t, await sync(anna, true));
  t.is(engine.state.lastApplied('inbox')?.sha256, await sha256(anna));

  const again = await sync(await ws.write('again.csv', threeCxCsv([person(1001, 'Anna', 'Smith'), person(1002, 'Bob', 'Stone')])));
  t.regex(again.plan.notes?.join('\n') ?? '', /identical to the input applied by run/, 'skipped');
  t.like(engine.state.lastApplied('inbox'), { sha256: await sha256(both), runId: again.runId, file: path.join(ws.dir, 'again.csv') });
});
