import test from 'ava';
import { appendFile, mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Journal, readJournalRecords, type JournalRecord } from '../../src/reconcile/journal.js';
import type { Operation } from '../../src/reconcile/types.js';

const op = (anchor: string, kind: Operation['kind'] = 'create', extension = '1000'): Operation => ({
  id: `${kind}:inbox/${anchor}`,
  kind,
  key: { source: 'inbox', anchor },
  extension,
  reason: 'test',
});

async function open() {
  const dir = await mkdtemp(path.join(tmpdir(), 'pbxsync-journal-'));
  return { dir, journal: await Journal.open(dir) };
}

/** The file's records, batch lines expanded. */
async function lines(file: string): Promise<JournalRecord[]> {
  return readJournalRecords(file);
}

test('pendingCreates: starts without done, keeping retryable failures, dropping refusals and settled keys', async (t) => {
  const { dir, journal } = await open();
  journal.start('r1', op('done', 'create', '1000'));
  journal.start('r1', op('crashed', 'create', '1001'));
  journal.start('r1', op('timeout', 'create', '1002'));
  journal.start('r1', op('refused', 'create', '1003'));
  journal.start('r1', op('later', 'create', '1004'));
  journal.start('r1', op('upd', 'update', '1005'));
  await journal.flushStarts();
  journal.done('r1', op('done'));
  journal.failed('r1', op('timeout'), 'socket hang up', true);
  journal.failed('r1', op('refused'), 'extension taken', false);
  await journal.flushCompletions();
  // A later run recovered "later" by adoption.
  journal.start('r2', op('later', 'adopt', '1004'));
  journal.done('r2', op('later', 'adopt', '1004'));
  await journal.close();
  // A kill -9 can leave half a line at the end.
  await appendFile(path.join(dir, 'journal.jsonl'), '{"ts":"2025-');

  const again = await Journal.open(dir);
  t.deepEqual(await again.pendingCreates(), [
    { key: { source: 'inbox', anchor: 'crashed' }, extension: '1001' },
    { key: { source: 'inbox', anchor: 'timeout' }, extension: '1002' },
  ]);
  await again.close();
});

test('flushStarts: concurrent callers share writes and all starts reach the file before they resolve', async (t) => {
  const { dir, journal } = await open();
  const waits: Array<Promise<void>> = [];
  for (let i = 0; i < 50; i++) {
    journal.start('r1', op(`n${i}`));
    waits.push(journal.flushStarts());
  }
  await Promise.all(waits);
  t.is((await lines(path.join(dir, 'journal.jsonl'))).length, 50);
  journal.done('r1', op('n0'));
  t.is((await lines(path.join(dir, 'journal.jsonl'))).length, 50, "'done' waits for flushCompletions");
  await journal.close();
});

test('compact keeps only unsettled creates and rotates the history', async (t) => {
  const { dir, journal } = await open();
  journal.start('r1', op('a'));
  journal.start('r1', op('b', 'create', '1001'));
  journal.done('r1', op('a'));
  await journal.compact();
  const kept = await lines(path.join(dir, 'journal.jsonl'));
  t.deepEqual(kept.map((r) => `${r.opId} ${r.phase}`), ['create:inbox/b start']);
  t.is((await lines(path.join(dir, 'journal.1.jsonl'))).length, 3);
  journal.start('r2', op('c', 'update'));
  await journal.close();
  t.is((await lines(path.join(dir, 'journal.jsonl'))).length, 2, 'still appendable after compaction');
});

test('100,000 operations batched the way apply does: every start and done reaches the file, nothing stays pending', async (t) => {
  // How fast this is belongs to the benchmark (bench/import.ts), not to a timer here.
  const { dir, journal } = await open();
  const ops = Array.from({ length: 100_000 }, (_, i) => op(`n${i}`, 'create', String(100000 + i)));
  for (let i = 0; i < ops.length; i += 8) {
    const batch = ops.slice(i, i + 8);
    for (const o of batch) journal.start('r1', o);
    await Promise.all(batch.map(() => journal.flushStarts()));
    for (const o of batch) journal.done('r1', o);
    if (i % 500 === 0) await journal.flushCompletions();
  }
  await journal.flush();
  const records = await lines(path.join(dir, 'journal.jsonl'));
  t.is(records.filter((r) => r.phase === 'start').length, 100_000);
  t.is(records.filter((r) => r.phase === 'done').length, 100_000);
  t.deepEqual(await journal.pendingCreates(), []);
  await journal.close();
});

test('operations announced or confirmed together share one line; single-record lines of earlier versions still count', async (t) => {
  const { dir, journal } = await open();
  const file = path.join(dir, 'journal.jsonl');
  // A journal an earlier version left: one record per line, a create started and never confirmed.
  const legacy: JournalRecord = { ts: '2026-01-01T00:00:00.000Z', runId: 'r0', opId: 'create:inbox/old', kind: 'create', key: { source: 'inbox', anchor: 'old' }, extension: '999', phase: 'start' };
  await appendFile(file, JSON.stringify(legacy) + '\n');
  const ops = Array.from({ length: 30 }, (_, i) => op(`n${i}`, 'create', String(1000 + i)));
  for (const o of ops) journal.start('r1', o);
  await journal.flushStarts();
  for (const o of ops.slice(0, 20)) journal.done('r1', o);
  journal.failed('r1', ops[20], 'refused', false);
  for (const o of ops.slice(21, 25)) journal.done('r1', o);
  await journal.flushCompletions();
  await journal.close();

  const text = await readFile(file, 'utf8');
  t.is(text.trimEnd().split('\n').length, 1 + 1 + 3, 'legacy line, one start line, done / failed / done');
  const records = await lines(file);
  t.is(records.length, 1 + 30 + 25);
  t.deepEqual(records[1], { ts: records[1].ts, runId: 'r1', opId: 'create:inbox/n0', kind: 'create', key: { source: 'inbox', anchor: 'n0' }, extension: '1000', phase: 'start' });
  t.deepEqual(records.slice(31).map((r) => `${r.opId} ${r.phase}`).slice(19, 22), ['create:inbox/n19 done', 'create:inbox/n20 failed', 'create:inbox/n21 done']);

  const again = await Journal.open(dir);
  t.deepEqual(
    (await again.pendingCreates()).map((p) => p.key.anchor),
    ['n25', 'n26', 'n27', 'n28', 'n29', 'old'],
  );
  await again.close();
});
