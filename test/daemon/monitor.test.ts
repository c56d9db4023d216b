import test from 'ava';
import type { CsvReport } from '../../connectors/csv/report.js';
import { createMetrics } from '../../src/daemon/metrics.js';
import { SourceMonitor } from '../../src/daemon/monitor.js';
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

test('a processed file with failed operations: shown, counted, degraded until a clean file follows', async (t) => {
  const metrics = createMetrics();
  const m = new SourceMonitor(metrics);
  m.fileMoved('hr', report(), 'processed', '/srv/inbox/processed/staff.csv');
  t.deepEqual(m.status('hr').lastFile, {
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
  t.deepEqual(m.reasons(), ['source hr: last file staff.csv: 1 operation failed (see /srv/inbox/processed/staff.csv)']);
  const text = await metrics.registry.metrics();
  t.regex(text, /^pbxsync_dropped_files_total\{source="hr",status="processed"\} 1$/m);
  t.regex(text, /^pbxsync_rejected_rows_total\{source="hr"\} 1$/m);
  t.regex(text, /^pbxsync_failed_operations_total\{source="hr"\} 1$/m);
  t.regex(text, /^pbxsync_source_degraded\{source="hr"\} 1$/m);

  m.fileMoved('hr', report({ file: '/srv/inbox/next.csv', failed: 0, rejected: [] }), 'processed', '/srv/inbox/processed/next.csv');
  t.deepEqual(m.reasons(), []);
  t.is(m.status('hr').degraded, undefined);
  t.regex(await metrics.registry.metrics(), /^pbxsync_source_degraded\{source="hr"\} 0$/m);
});

test('rejected rows alone are shown and counted but do not degrade the source', async (t) => {
  const metrics = createMetrics();
  const m = new SourceMonitor(metrics);
  m.fileMoved('hr', report({ failed: 0 }), 'processed', '/srv/inbox/processed/staff.csv');
  t.like(m.status('hr').lastFile, { rejected: 2, failed: 0 });
  t.deepEqual(m.reasons(), []);
  t.regex(await metrics.registry.metrics(), /^pbxsync_rejected_rows_total\{source="hr"\} 2$/m);
});

test('a file that went to failed/ degrades the source until a scheduled run succeeds', (t) => {
  const m = new SourceMonitor();
  m.fileMoved('hr', report({ applied: 0, failed: 0, error: 'mapping broken' }), 'failed', '/srv/inbox/failed/staff.csv');
  t.deepEqual(m.reasons(), ['source hr: last file staff.csv went to failed/ (mapping broken)']);
  m.runWorked('hr');
  t.is(m.reasons().length, 1, 'a run that merely got through changes nothing');
  m.runSucceeded('hr');
  t.deepEqual(m.reasons(), []);
  t.like(m.status('hr').lastFile, { status: 'failed', error: 'mapping broken' }, 'the last file is still shown');
});

test('storage failures: counted, named with folder and error, until a run works', async (t) => {
  const metrics = createMetrics();
  const m = new SourceMonitor(metrics);
  const err = new StorageError('pbxsync cannot use its own files in /var/lib/pbxsync (EROFS): read-only file system', { folder: '/var/lib/pbxsync' });
  m.storageFailed('hr', err);
  m.storageFailed('hr', err);
  t.like(m.status('hr').storage, { folder: '/var/lib/pbxsync', failures: 2 });
  t.is(m.reasons().length, 1);
  t.regex(m.reasons()[0]!, /^source hr: runs fail since \S+ \(2 tries\): pbxsync cannot use its own files in \/var\/lib\/pbxsync \(EROFS\)/);
  t.regex(await metrics.registry.metrics(), /^pbxsync_storage_failures_total\{source="hr"\} 2$/m);
  m.runWorked('hr');
  t.deepEqual(m.reasons(), []);
  t.is(m.status('hr').storage, undefined);
});
