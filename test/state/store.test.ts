import test from 'ava';
import { appendFile, mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { PbxsyncError } from '../../src/errors/index.js';
import type { Binding } from '../../src/reconcile/types.js';
import { BINDINGS_FILE, BINDINGS_LOG_FILE, MAX_RUNS, MIN_FOLD_BYTES, StateStore } from '../../src/state/store.js';

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
  s.addHeldPlan({ file: 'f', reason: 'c', runId: 'r2', at: 'z' });
  t.is(s.held()?.reason, 'c');
  s.removeHeldPlan('r2');
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

test('state store: a clean run (exit 0 having read something) is remembered as lastClean; other outcomes keep it', async (t) => {
  const s = await StateStore.open(await dir());
  s.setSourceHealth('inbox', { at: 't1', ok: true, count: 10, exitCode: 0 }, { clean: true });
  s.setSourceHealth('inbox', { at: 't2', ok: true, count: 10, exitCode: 4 });
  s.setSourceHealth('inbox', { at: 't3', ok: false, error: 'PBX unreachable', exitCode: 1 });
  t.like(s.sourceHealthOf('inbox'), { lastClean: 't1', last: { at: 't3', exitCode: 1 } });
  s.setSourceHealth('inbox', { at: 't4', ok: true, count: 0, exitCode: 0 }, { clean: true });
  t.is(s.sourceHealthOf('inbox')?.lastClean, 't4');
  t.is(s.sourceHealthOf('nope'), undefined);
});

test('state store: the last dropped file of each source survives a save and a reopen; a state.json without it loads', async (t) => {
  const d = await dir();
  // A state.json as written before the last dropped file and the clean runs were kept.
  const old = { version: 1, cursors: {}, lastGoodCount: { inbox: 2 }, runs: [], heldPlans: [], sourceHealth: { inbox: { lastSuccess: 't0', last: { at: 't0', ok: true } } } };
  await writeFile(path.join(d, 'state.json'), JSON.stringify(old));
  const s = await StateStore.open(d);
  t.is(s.lastDroppedFile('inbox'), undefined);
  t.is(s.sourceHealthOf('inbox')?.lastClean, undefined);
  t.deepEqual(s.lastGoodCounts(), { inbox: 2 });

  const file = {
    name: 'staff.csv',
    runId: 'r1',
    at: '2026-12-05T13:00:01.000Z',
    status: 'failed' as const,
    movedTo: path.join(d, 'failed', 'staff.csv'),
    rows: 3,
    applied: 0,
    rejected: 0,
    failed: 0,
    held: 'would delete 12 users',
  };
  s.setLastDroppedFile('inbox', file);
  await s.save();
  const r = await StateStore.open(d);
  t.deepEqual(r.lastDroppedFile('inbox'), file);
  t.is(r.lastDroppedFile('other'), undefined);
  t.deepEqual(r.sourceHealthOf('inbox'), old.sourceHealth.inbox, 'what was there is kept');
});

test('state store: a store opened on an empty folder takes what another process saved there before it saved anything', async (t) => {
  const d = await dir();
  const daemon = await StateStore.open(d);
  const cli = await StateStore.open(d);
  cli.putBinding({ key: { source: 'inbox', anchor: 'a1' }, userId: 'u1', extension: '200', boundAt: '2025-01-01T00:00:00.000Z' });
  cli.recordRun({ runId: 'r1', sources: ['inbox'], startedAt: 'a', finishedAt: 'b', held: null, exitCode: 0 });
  await cli.save();

  t.true(await daemon.refresh(), 'nothing of its own to keep: it re-reads');
  t.is(daemon.managedCount, 1);
  daemon.setCursor('m365', 'tok');
  await daemon.save();
  const r = await StateStore.open(d);
  t.is(r.managedCount, 1, 'the other process’s binding is kept');
  t.is(r.runs()[0]?.runId, 'r1');
  t.is(r.cursor('m365'), 'tok');
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

// --- the bindings snapshot and log ---

function bind(i: number, source = 'inbox'): Binding {
  return { key: { source, anchor: `a${i}` }, userId: `u${i}`, extension: String(1000 + i), boundAt: '2025-01-01T00:00:00.000Z' };
}

async function files(d: string) {
  const log = await readFile(path.join(d, BINDINGS_LOG_FILE), 'utf8');
  const snapshot = JSON.parse(await readFile(path.join(d, BINDINGS_FILE), 'utf8')) as { generation: number; bindings: Binding[] };
  return { log, lines: log.split('\n').filter(Boolean), snapshot };
}

test('bindings: a checkpoint appends its changes to the log; reopening replays them over the snapshot', async (t) => {
  const d = await dir();
  const s = await StateStore.open(d);
  for (let i = 0; i < 3; i++) s.putBinding(bind(i));
  await s.save();
  const first = await files(d);
  t.is(first.snapshot.bindings.length, 3, 'the first save writes a snapshot');
  t.is(first.lines.length, 1, 'and an empty log (its header)');
  const stateIno = (await stat(s.file)).ino;

  s.putBinding(bind(3));
  s.putBinding({ ...bind(4), userId: 'u0' }); // takes u0 over from a0
  s.removeBinding(bind(1).key);
  s.setDisabledAt(bind(2).key, '2025-02-01T00:00:00.000Z');
  s.setDisabledAt(bind(3).key, '2025-02-01T00:00:00.000Z');
  s.setDisabledAt(bind(3).key, undefined);
  s.removeBinding({ source: 'inbox', anchor: 'nobody' });
  await s.save();
  const second = await files(d);
  t.is(second.snapshot.bindings.length, 3, 'the snapshot is not rewritten');
  t.deepEqual(JSON.parse(second.lines.at(-1)!), { saved: 6 }, 'one save of 6 changes (the no-op removal is not logged)');
  t.is(JSON.parse(second.lines.at(-2)!).length, 6);
  t.is((await stat(s.file)).ino, stateIno, 'state.json is not rewritten when only bindings changed');

  const r = await StateStore.open(d);
  t.deepEqual(r.bindings(), s.bindings());
  t.is(r.binding(bind(0).key), undefined, 'the take-over is replayed');
  t.is(r.bindingByUserId('u0')?.key.anchor, 'a4');
  t.is(r.binding(bind(2).key)?.disabledAt, '2025-02-01T00:00:00.000Z');
  t.false('disabledAt' in r.binding(bind(3).key)!);
  t.is(r.managedCount, 3);
});

test('bindings: a save cut short by a crash (torn last line, batch without its count) is dropped whole', async (t) => {
  const d = await dir();
  const s = await StateStore.open(d);
  s.putBinding(bind(0));
  await s.save();
  s.putBinding(bind(1));
  await s.save();
  const logFile = path.join(d, BINDINGS_LOG_FILE);
  const good = await readFile(logFile, 'utf8');

  // A save whose changes all made it but not its closing line, then a torn line.
  await appendFile(logFile, JSON.stringify([['p', bind(2)]]) + '\n' + JSON.stringify([['r', bind(0).key]]) + '\n' + '[["p",{"key":{"sou');
  const r = await StateStore.open(d);
  t.deepEqual(r.bindings().map((b) => b.key.anchor), ['a0', 'a1'], 'the complete batches only');

  // The next save does not append after the torn tail: it writes a new snapshot and a fresh log.
  r.putBinding(bind(3));
  await r.save();
  const after = await files(d);
  t.is(after.lines.length, 1);
  t.deepEqual(after.snapshot.bindings.map((b) => b.key.anchor).sort(), ['a0', 'a1', 'a3']);
  t.true(after.snapshot.generation > 1);
  t.deepEqual((await StateStore.open(d)).bindings(), r.bindings());
  t.not(after.log, good);
});

test('bindings: a damaged line before a complete batch is refused, not skipped', async (t) => {
  const d = await dir();
  const s = await StateStore.open(d);
  s.putBinding(bind(0));
  await s.save();
  const logFile = path.join(d, BINDINGS_LOG_FILE);
  await appendFile(logFile, 'garbage\n' + JSON.stringify([['p', bind(1)]]) + '\n{"saved":1}\n');
  const err = await t.throwsAsync(StateStore.open(d));
  t.is((err as PbxsyncError).code, 'STATE_CORRUPT');
  t.regex(err!.message, /damaged/);
});

test('bindings: new bindings stay in the log; it is folded once half of what a load reads is superseded', async (t) => {
  const d = await dir();
  const s = await StateStore.open(d);
  s.putBinding(bind(0));
  await s.save(); // the first save writes the snapshot
  const first = (await files(d)).snapshot.generation;
  let n = 1;
  // ~120 bytes per logged binding: 10,000 new ones take the log well past MIN_FOLD_BYTES without a fold.
  for (let batch = 0; batch < 20; batch++) {
    for (let i = 0; i < 500; i++) s.putBinding(bind(n++));
    await s.save();
  }
  let f = await files(d);
  t.is(f.snapshot.generation, first, 'all live data: never folded');
  t.true(Buffer.byteLength(f.log) > MIN_FOLD_BYTES);

  // The same identities bound again (re-created users): each record supersedes one. The fold comes once the
  // snapshot and the log hold two records per binding, not before.
  let rebound = 0;
  let foldedAt: number | undefined;
  for (let batch = 0; batch < 25 && foldedAt === undefined; batch++) {
    for (let i = 0; i < 500; i++, rebound++) s.putBinding({ ...bind(rebound % n), userId: `again-${rebound}` });
    await s.save();
    f = await files(d);
    if (f.snapshot.generation !== first) foldedAt = rebound;
  }
  // n records already (1 in the snapshot, n - 1 in the log): due at the first save that brings n more.
  t.is(foldedAt, Math.ceil(n / 500) * 500, `${n} bindings: folded after ${foldedAt} were bound again`);
  t.is(f.lines.length, 1, 'a fold leaves an empty log');
  t.is(f.snapshot.bindings.length, n);
  const r = await StateStore.open(d);
  t.is(r.managedCount, n);
  t.deepEqual(r.bindings(), s.bindings());
});

test('bindings: compact folds the log; a crash between the new snapshot and the log reset replays nothing twice', async (t) => {
  const d = await dir();
  const s = await StateStore.open(d);
  s.putBinding(bind(0));
  s.putBinding(bind(1));
  await s.save();
  s.putBinding({ ...bind(2), userId: 'u0' });
  s.removeBinding(bind(1).key);
  await s.save();
  const logFile = path.join(d, BINDINGS_LOG_FILE);
  const oldLog = await readFile(logFile);
  const before = (await files(d)).snapshot.generation;

  await s.compact();
  const f = await files(d);
  t.is(f.snapshot.generation, before + 1);
  t.is(f.lines.length, 1);
  t.deepEqual(f.snapshot.bindings.map((b) => b.key.anchor).sort(), ['a2']);
  const mtime = (await stat(path.join(d, BINDINGS_FILE))).mtimeMs;
  await s.compact();
  t.is((await stat(path.join(d, BINDINGS_FILE))).mtimeMs, mtime, 'nothing to fold: nothing written');

  // The old log back beside the new snapshot, as after a crash between the two steps of a fold.
  await writeFile(logFile, oldLog);
  const r = await StateStore.open(d);
  t.deepEqual(r.bindings(), s.bindings());
  r.putBinding(bind(3));
  await r.save();
  t.deepEqual((await StateStore.open(d)).bindings().map((b) => b.key.anchor), ['a2', 'a3']);
});

test('bindings: a state.json from before the log is read, and its bindings move to bindings.json at the next save', async (t) => {
  const d = await dir();
  const old = {
    version: 1,
    bindings: [bind(0), { ...bind(1), disabledAt: '2025-02-01T00:00:00.000Z' }],
    cursors: { m365: 'tok' },
    lastGoodCount: { inbox: 2 },
    runs: [],
    heldPlans: [],
    sourceHealth: {},
  };
  await writeFile(path.join(d, 'state.json'), JSON.stringify(old));
  const s = await StateStore.open(d);
  t.is(s.managedCount, 2);
  t.is(s.binding(bind(1).key)?.disabledAt, '2025-02-01T00:00:00.000Z');
  t.is(s.cursor('m365'), 'tok');
  await s.save();
  const state = JSON.parse(await readFile(s.file, 'utf8'));
  t.false('bindings' in state);
  t.is(state.cursors.m365, 'tok');
  t.is((await files(d)).snapshot.bindings.length, 2);
  t.deepEqual((await StateStore.open(d)).bindings(), s.bindings());
});

test('bindings: a log another process wrote is not appended to: this process writes a whole snapshot', async (t) => {
  const d = await dir();
  const a = await StateStore.open(d);
  a.putBinding(bind(0));
  await a.save();
  const b = await StateStore.open(d);
  b.putBinding(bind(1));
  await b.save();
  // As with the single state file before, the last process to save writes what it holds.
  a.putBinding(bind(2));
  await a.save();
  const f = await files(d);
  t.is(f.lines.length, 1, 'a folded instead of appending after b');
  t.deepEqual((await StateStore.open(d)).bindings(), a.bindings());
});

test('bindings: changes made while a save is writing go to the next save', async (t) => {
  const d = await dir();
  const s = await StateStore.open(d);
  s.putBinding(bind(0));
  const first = s.save();
  s.putBinding(bind(1));
  const second = s.save();
  s.removeBinding(bind(0).key);
  await Promise.all([first, second]);
  await s.save();
  t.deepEqual((await StateStore.open(d)).bindings(), s.bindings());
  t.deepEqual(s.bindings().map((b) => b.key.anchor), ['a1']);
});

test('bindings: a big save is written as several lines of changes and replayed whole', async (t) => {
  const d = await dir();
  const s = await StateStore.open(d);
  s.putBinding(bind(0));
  await s.save();
  for (let i = 1; i <= 2500; i++) s.putBinding(bind(i));
  for (let i = 1; i <= 2500; i += 2) s.setDisabledAt(bind(i).key, 'x');
  await s.save();
  const f = await files(d);
  t.is(f.snapshot.bindings.length, 1);
  t.deepEqual(JSON.parse(f.lines.at(-1)!), { saved: 3750 });
  t.is(f.lines.length, 1 + 4 + 1, 'header, 4 lines of up to 1,000 changes, the closing line');
  const r = await StateStore.open(d);
  t.deepEqual(r.bindings(), s.bindings());
  t.is(r.binding(bind(2499).key)?.disabledAt, 'x');
});
