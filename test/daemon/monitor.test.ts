import test from 'ava';
import type { CsvReport } from '../../connectors/csv/report.js';
import { createMetrics } from '../../src/daemon/metrics.js';
import { SourceMonitor } from '../../src/daemon/monitor.js';
import { droppedFileProblem } from '../../src/engine/droppedFile.js';
import type { LastDroppedFile } from '../../src/state/store.js';
import { StorageError } from '../../src/errors/index.js';

const report = (overrides: Partial<CsvReport> = {}): CsvReport => ({
  file: '/srv/inbox/staff.csv',
  source: 'hr',
  runId: '20261205T130000Z-abcdef',
  startedAt: '2026-12-05T13:00:00.000Z',
  finishedAt: '2026-12-05T13:00:01.000Z',
  rows: 5,
  applied: 3,
  rejected: [
    { line: 2, kind: 'rejected', reason: 'extension 911 is an emergency number' },
    { line: 4, kind: 'failed', reason: 'the target refused the e-mail' },
  ],
  failed: 1,
  ...overrides,
});

test('a moved file: its record for the state, and its rows and failed operations counted', async (t) => {
  const metrics = createMetrics();
  const m = new SourceMonitor({ metrics });
  const file = m.fileMoved('hr', report(), 'processed', '/srv/inbox/processed/staff.csv');
  t.deepEqual(file, {
    name: 'staff.csv',
    runId: '20261205T130000Z-abcdef',
    at: '2026-12-05T13:00:01.000Z',
    status: 'processed',
    movedTo: '/srv/inbox/processed/staff.csv',
    rows: 5,
    applied: 3,
    rejected: 1,
    failed: 1,
  });
  const text = await metrics.registry.metrics();
  t.regex(text, /^pbxsync_dropped_files_total\{source="hr",status="processed"\} 1$/m);
  t.regex(text, /^pbxsync_rejected_rows_total\{source="hr"\} 1$/m);
  t.regex(text, /^pbxsync_failed_operations_total\{source="hr"\} 1$/m);
});

test('rejected rows alone are counted, and the record of a failed file keeps why', async (t) => {
  const metrics = createMetrics();
  const m = new SourceMonitor({ metrics });
  const rows = [
    { line: 2, kind: 'rejected' as const, reason: 'extension 911 is an emergency number' },
    { line: 4, kind: 'conflict' as const, reason: 'MAC 001565112233 is held by 1005 (not managed by pbxsync)' },
  ];
  t.like(m.fileMoved('hr', report({ failed: 0, rejected: rows }), 'processed', '/srv/inbox/processed/staff.csv'), { rejected: 2, failed: 0 });
  t.regex(await metrics.registry.metrics(), /^pbxsync_rejected_rows_total\{source="hr"\} 2$/m);
  // A problem with the whole file (line 0) is the file's status, not a rejected row.
  const empty = m.fileMoved('hr', report({ rows: 0, applied: 0, failed: 0, rejected: [{ line: 0, kind: 'rejected', reason: 'the file is empty' }], error: 'the file is empty' }), 'failed', '/srv/inbox/failed/empty.csv');
  t.like(empty, { status: 'failed', rows: 0, rejected: 0 });
  t.regex(await metrics.registry.metrics(), /^pbxsync_rejected_rows_total\{source="hr"\} 2$/m);
  const failed = m.fileMoved('hr', report({ applied: 0, failed: 0, rejected: [], error: 'mapping broken', held: null }), 'failed', '/srv/inbox/failed/staff.csv');
  t.like(failed, { status: 'failed', error: 'mapping broken', held: null });
});

test('degraded by the last dropped file as the state says, and the gauge follows at each update', async (t) => {
  const metrics = createMetrics();
  let problem: string | undefined = 'last file staff.csv went to failed/ (mapping broken)';
  const m = new SourceMonitor({ metrics, fileProblem: () => problem });
  m.update('hr');
  t.deepEqual(m.status('hr'), { degraded: 'last file staff.csv went to failed/ (mapping broken)' });
  t.regex(await metrics.registry.metrics(), /^pbxsync_source_degraded\{source="hr"\} 1$/m);
  problem = undefined;
  m.update('hr');
  t.deepEqual(m.status('hr'), {});
  t.regex(await metrics.registry.metrics(), /^pbxsync_source_degraded\{source="hr"\} 0$/m);
});

test('storage failures: counted, named with folder and error, before a file problem, until a run works', async (t) => {
  const metrics = createMetrics();
  const m = new SourceMonitor({ metrics, fileProblem: () => 'last file staff.csv went to failed/ (mapping broken)' });
  const err = new StorageError('pbxsync cannot use its own files in /var/lib/pbxsync (EROFS): read-only file system', { folder: '/var/lib/pbxsync' });
  m.storageFailed('hr', err);
  m.storageFailed('hr', err);
  t.like(m.status('hr').storage, { folder: '/var/lib/pbxsync', failures: 2 });
  t.regex(m.status('hr').degraded!, /^runs fail since \S+ \(2 tries\): pbxsync cannot use its own files in \/var\/lib\/pbxsync \(EROFS\)/);
  t.regex(await metrics.registry.metrics(), /^pbxsync_storage_failures_total\{source="hr"\} 2$/m);
  m.runWorked('hr');
  t.is(m.status('hr').storage, undefined);
  t.is(m.status('hr').degraded, 'last file staff.csv went to failed/ (mapping broken)');
});

const file = (overrides: Partial<LastDroppedFile> = {}): LastDroppedFile => ({
  name: 'staff.csv',
  at: '2026-12-05T13:00:01.000Z',
  status: 'processed',
  movedTo: '/srv/inbox/processed/staff.csv',
  rows: 5,
  applied: 3,
  rejected: 0,
  failed: 0,
  ...overrides,
});
const before = '2026-12-05T13:00:00.500Z';
const after = '2026-12-05T14:00:00.000Z';

const problems: Array<[string, LastDroppedFile | undefined, string | undefined, string | undefined]> = [
  ['no file', undefined, undefined, undefined],
  ['a clean file', file(), undefined, undefined],
  ['rejected rows alone', file({ rejected: 2 }), undefined, undefined],
  ['failed operations', file({ failed: 2 }), before, 'last file staff.csv: 2 operations failed (see /srv/inbox/processed/staff.csv)'],
  ['one failed operation', file({ failed: 1 }), undefined, 'last file staff.csv: 1 operation failed (see /srv/inbox/processed/staff.csv)'],
  ['went to failed/ with an error', file({ status: 'failed', applied: 0, error: 'mapping broken' }), before, 'last file staff.csv went to failed/ (mapping broken)'],
  ['went to failed/, held', file({ status: 'failed', applied: 0, held: 'would delete 12 users' }), undefined, 'last file staff.csv went to failed/ (plan held: would delete 12 users)'],
  ['went to failed/, nothing usable', file({ status: 'failed', applied: 0, held: null }), undefined, 'last file staff.csv went to failed/ (nothing in it could be applied)'],
  ['went to failed/, a clean run since', file({ status: 'failed', applied: 0, error: 'mapping broken' }), after, undefined],
  ['failed operations, a clean run since', file({ failed: 2 }), after, undefined],
];
for (const [title, last, lastClean, expected] of problems) {
  test(`droppedFileProblem: ${title}`, (t) => {
    t.is(droppedFileProblem(last, lastClean ? { lastClean } : {}), expected);
  });
}
