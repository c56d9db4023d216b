import test from 'ava';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MAX_RUNS, StateStore } from '../../src/state/store.js';

async function dir(): Promise<string> {
  return mkdtemp(path.join(tmpdir(), 'pbxsync-state-'));
}

test('state store: everything survives a save and a reopen', async (t) => {
  const d = await dir();
  const s = await StateStore.open(d);
  s.putBinding({ key: { source: 'inbox', anchor: 'a1' }, userId: 'u1', extension: '200', boundAt: '2025-01-01T00:00:00.000Z' });
  s.putBinding({ key: { source: 'hr', anchor: 'h1' }, userId: 'u2', extension: '201', boundAt: '2025-01-01T00:00:00.000Z' });
  s.setDisabledAt({ source: 'hr', anchor: 'h1' }, '2025-02-01T00:00:00.000Z');
  s.setCursor('m365', 'delta-token-2');
  s.setLastGoodCount('inbox', 1000);
  s.recordRun({ runId: 'r1', sources: ['inbox'], startedAt: 'a', finishedAt: 'b', held: null, exitCode: 0 });
  s.addHeldPlan({ file: path.join(d, 'plans', 'r2.json'), reason: 'would delete 12 users', runId: 'r2', at: 'c' });
  s.recordSourceSuccess('inbox', '2025-03-01T00:00:00.000Z');
  s.recordSourceFailure('ldap', '2025-03-01T00:00:00.000Z', 'connection refused');
  await s.save();

  const r = await StateStore.open(d);
  t.deepEqual(r.bindings(), s.bindings());
  t.is(r.bindingByUserId('u2')?.disabledAt, '2025-02-01T00:00:00.000Z');
  t.is(r.binding({ source: 'inbox', anchor: 'a1' })?.extension, '200');
  t.is(r.managedCount, 2);
  t.is(r.cursor('m365'), 'delta-token-2');
  t.deepEqual(r.lastGoodCounts(), { inbox: 1000 });
  t.is(r.runs()[0].runId, 'r1');
  t.is(r.heldPlans()[0].reason, 'would delete 12 users');
  t.deepEqual(r.sourceHealth(), {
    inbox: { lastSuccess: '2025-03-01T00:00:00.000Z' },
    ldap: { lastFailure: '2025-03-01T00:00:00.000Z', lastError: 'connection refused' },
  });
  const json = JSON.parse(await readFile(r.file, 'utf8'));
  t.is(json.version, 1);
});

test('state store: re-binding an identity replaces its old user; removing unbinds both indexes', async (t) => {
  const s = await StateStore.open(await dir());
  const key = { source: 'inbox', anchor: 'a1' };
  s.putBinding({ key, userId: 'old', extension: '200', boundAt: 'x' });
  s.putBinding({ key, userId: 'new', extension: '200', boundAt: 'y' });
  t.is(s.bindingByUserId('old'), undefined);
  t.is(s.binding(key)?.userId, 'new');
  s.setDisabledAt(key, 'z');
  s.setDisabledAt(key, undefined);
  t.false('disabledAt' in (s.binding(key) ?? {}));
  s.removeBinding(key);
  t.is(s.bindingByUserId('new'), undefined);
  t.is(s.managedCount, 0);
});

test('state store: keeps the last 100 runs; held plans are replaced by run id and removable', async (t) => {
  const s = await StateStore.open(await dir());
  for (let i = 0; i < 130; i++) s.recordRun({ runId: `r${i}`, sources: [], startedAt: String(i), held: null, exitCode: 0 });
  t.is(s.runs().length, MAX_RUNS);
  t.is(s.runs()[0].runId, 'r129', 'newest first');
  t.is(s.runs().at(-1)?.runId, 'r30');
  s.addHeldPlan({ file: 'f', reason: 'a', runId: 'r1', at: 'x' });
  s.addHeldPlan({ file: 'f', reason: 'b', runId: 'r1', at: 'y' });
  t.deepEqual(s.heldPlans().map((p) => p.reason), ['b']);
  s.removeHeldPlan('r1');
  t.deepEqual(s.heldPlans(), []);
  s.setHeld({ file: 'f', reason: 'c', runId: 'r2', at: 'z' });
  t.is(s.held()?.reason, 'c');
  s.clearHeld();
  t.is(s.held(), undefined);
});

test('state store: source health keeps the latest outcome and the last success and failure', async (t) => {
  const s = await StateStore.open(await dir());
  s.setSourceHealth('inbox', { at: 't1', ok: true, count: 10 });
  s.setSourceHealth('inbox', { at: 't2', ok: false, error: 'incomplete read' });
  t.deepEqual(s.sourceHealth('inbox'), { at: 't2', ok: false, error: 'incomplete read' });
  t.deepEqual(s.sourceHealth().inbox, {
    lastSuccess: 't1',
    lastFailure: 't2',
    lastError: 'incomplete read',
    last: { at: 't2', ok: false, error: 'incomplete read' },
  });
  t.is(s.sourceHealth('nope'), undefined);
});

test('state store: planState hands bindings, counts and pending creates to the planner', async (t) => {
  const s = await StateStore.open(await dir());
  s.putBinding({ key: { source: 'inbox', anchor: 'a1' }, userId: 'u1', extension: '200', boundAt: 'x' });
  s.setLastGoodCount('inbox', 5);
  const now = new Date('2025-01-01T00:00:00Z');
  const ps = s.planState(now, [{ key: { source: 'inbox', anchor: 'a2' }, extension: '201' }]);
  t.is(ps.now, now);
  t.is(ps.bindings.length, 1);
  t.deepEqual(ps.lastGoodCount, { inbox: 5 });
  t.is(ps.pendingCreates?.length, 1);
});
