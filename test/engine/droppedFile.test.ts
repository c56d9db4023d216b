import test, { type ExecutionContext } from 'ava';
import { loadConfig } from '../../src/config/load.js';
import { recordDroppedFile } from '../../src/engine/droppedFile.js';
import { createEngine, type Engine } from '../../src/engine/engine.js';
import { collectStatus } from '../../src/engine/status.js';
import { runSync } from '../../src/engine/sync.js';
import { EXIT } from '../../src/errors/index.js';
import { silentLogger } from '../../src/log.js';
import { acquireLock } from '../../src/state/lock.js';
import type { LastDroppedFile } from '../../src/state/store.js';
import { makeWorkspace, person, threeCxCsv, type Workspace } from '../helpers/workspace.js';

async function engineFor(t: ExecutionContext, ws: Workspace): Promise<Engine> {
  const engine = await createEngine(await loadConfig(ws.config), { logger: silentLogger() });
  t.teardown(() => engine.close());
  return engine;
}

const failedFile = (ws: Workspace, at = new Date().toISOString()): LastDroppedFile => ({
  name: 'broken.csv',
  runId: '20261205T130000Z-abcdef',
  at,
  status: 'failed',
  movedTo: `${ws.inbox}/failed/broken.csv`,
  rows: 0,
  applied: 0,
  rejected: 0,
  failed: 0,
  held: null,
});

test('a recorded dropped file is in the state: another process shows it, degraded, with what it saved meanwhile kept', async (t) => {
  const ws = await makeWorkspace({ mail: 'mail: { welcome: false, from: pbx@example.com }' });
  const daemon = await engineFor(t, ws);
  // A CLI import saves a run the daemon has not read yet.
  const cli = await engineFor(t, ws);
  const first = await ws.write('first.csv', threeCxCsv([person(1001, 'Anna', 'Smith')]));
  const imported = await runSync(cli, { inputs: { inbox: first }, full: false, dryRun: false, approve: false });
  t.is(imported.exitCode, EXIT.ok);

  const file = failedFile(ws);
  await recordDroppedFile(daemon, 'inbox', file);

  const later = await engineFor(t, ws);
  const status = await collectStatus(later, { countTargetUsers: false });
  t.deepEqual(status.sources[0]!.lastFile, file);
  t.is(status.sources[0]!.degraded, 'last file broken.csv went to failed/ (nothing in it could be applied)');
  t.true(status.runs.some((r) => r.runId === imported.runId), 'the CLI’s run is not dropped by the daemon’s save');
  t.is(status.managed, 1);
});

test('recording a dropped file waits for the state lock another process holds, and gives up when told to stop', async (t) => {
  const ws = await makeWorkspace({ mail: 'mail: { welcome: false, from: pbx@example.com }' });
  const engine = await engineFor(t, ws);
  const release = await acquireLock(ws.stateDir);
  let settled = false;
  const recording = recordDroppedFile(engine, 'inbox', failedFile(ws)).finally(() => (settled = true));
  // The lock is still held: whatever the recording did so far, it has not saved.
  t.false(settled);
  t.is((await engineFor(t, ws)).state.lastDroppedFile('inbox'), undefined);
  await release();
  await recording;
  t.is((await engineFor(t, ws)).state.lastDroppedFile('inbox')?.name, 'broken.csv');

  const again = await acquireLock(ws.stateDir);
  t.teardown(() => again());
  const stop = new AbortController();
  const stopped = recordDroppedFile(engine, 'inbox', { ...failedFile(ws), name: 'next.csv' }, stop.signal);
  stop.abort();
  await t.throwsAsync(stopped);
  t.is((await engineFor(t, ws)).state.lastDroppedFile('inbox')?.name, 'broken.csv');
});

test('a failed dropped file degrades its source until a run of it ends with exit 0 having read something', async (t) => {
  const ws = await makeWorkspace({ mail: 'mail: { welcome: false, from: pbx@example.com }' });
  const engine = await engineFor(t, ws);
  await recordDroppedFile(engine, 'inbox', failedFile(ws));
  const degraded = async () => (await collectStatus(engine, { countTargetUsers: false })).sources[0]!.degraded;
  t.truthy(await degraded());

  // A sync without a file reads nothing of a CSV source: exit 0, but nothing was fixed.
  const nothing = await runSync(engine, { full: false, dryRun: false, approve: false });
  t.is(nothing.exitCode, EXIT.ok);
  t.truthy(await degraded());

  // A file with a rejected row ends with exit 4.
  const partly = await ws.write('partly.csv', threeCxCsv([person(1001, 'Anna', 'Smith'), person(911, 'Not', 'Allowed')]));
  t.is((await runSync(engine, { inputs: { inbox: partly }, full: false, dryRun: false, approve: false })).exitCode, EXIT.partial);
  t.truthy(await degraded());

  const good = await ws.write('good.csv', threeCxCsv([person(1002, 'Bob', 'Stone')]));
  t.is((await runSync(engine, { inputs: { inbox: good }, full: false, dryRun: false, approve: false })).exitCode, EXIT.ok);
  const status = await collectStatus(engine, { countTargetUsers: false });
  t.is(status.sources[0]!.degraded, undefined);
  t.is(status.sources[0]!.lastFile?.name, 'broken.csv', 'the last dropped file is still shown');
  t.is(status.sources[0]!.health?.exitCode, EXIT.ok);
});
