import test from 'ava';
import { parse } from 'csv-parse/sync';
import {
  formatCsvReport,
  formatJsonReport,
  formatReport,
  inLineOrder,
  rejectionFromIssue,
  type CsvRejection,
  type CsvReport,
} from '../../../connectors/csv/report.js';
import { registerSecret } from '../../../src/log.js';

const report = (overrides: Partial<CsvReport> = {}): CsvReport => ({
  file: '/drop/users.csv',
  source: 'hr',
  runId: 'r-1',
  startedAt: '2025-01-02T03:04:05.000Z',
  finishedAt: '2025-01-02T03:04:06.000Z',
  rows: 3,
  applied: 1,
  rejected: [
    { line: 3, kind: 'rejected', column: 'Number', reason: 'no value in key column Number' },
    { line: 4, kind: 'rejected', column: 'Number', record: '1001', reason: 'duplicate extension 1001, first on line 2' },
  ],
  summary: { create: 1 },
  held: null,
  ...overrides,
});

test('rejectionFromIssue keeps line, column, record and message, as a rejected row', (t) => {
  t.deepEqual(
    rejectionFromIssue({ source: 'hr', file: 'f', line: 4, field: 'Number', record: '1001', message: 'dup' }),
    { line: 4, kind: 'rejected', column: 'Number', record: '1001', reason: 'dup' },
  );
  t.deepEqual(rejectionFromIssue({ source: 'hr', message: 'file is empty' }), { line: 0, kind: 'rejected', reason: 'file is empty' });
});

// The file-level rows used to follow the rejected rows; they come first now, as line-less entries do everywhere.
test('CSV report: line,column,record,reason,kind; the file-level rows (no line) first, then the entries', (t) => {
  const text = formatCsvReport(report({ error: 'boom', held: 'too many deletions' }));
  t.deepEqual(parse(text), [
    ['line', 'column', 'record', 'reason', 'kind'],
    ['', '', '', 'file not processed: boom', 'error'],
    ['', '', '', 'plan held: too many deletions', 'held'],
    ['3', 'Number', '', 'no value in key column Number', 'rejected'],
    ['4', 'Number', '1001', 'duplicate extension 1001, first on line 2', 'rejected'],
  ]);
});

test('inLineOrder: by line, line-less entries first, one line\'s entries in the order given; the input is left as it was', (t) => {
  const given: CsvRejection[] = [
    { line: 7, kind: 'rejected', reason: 'r7' },
    { line: 5, kind: 'rejected', reason: 'r5' },
    { line: 0, kind: 'rejected', reason: 'file' },
    { line: 5, kind: 'conflict', reason: 'c5' },
    { line: 3, kind: 'failed', reason: 'f3' },
    { line: 5, kind: 'failed', reason: 'f5' },
  ];
  const before = structuredClone(given);
  t.deepEqual(inLineOrder(given).map((x) => x.reason), ['file', 'f3', 'r5', 'c5', 'f5', 'r7']);
  t.deepEqual(given, before);
});

test('CSV report: cells that Excel would run as formulas are defused', (t) => {
  const text = formatCsvReport(report({ rejected: [{ line: 2, kind: 'rejected', record: '=HYPERLINK("http://x")', reason: '+1 bad' }] }));
  t.deepEqual(parse(text)[1], ['2', '', `'=HYPERLINK("http://x")`, `'+1 bad`, 'rejected']);
});

test('JSON report round-trips', (t) => {
  t.deepEqual(JSON.parse(formatJsonReport(report())), report());
  t.is(formatReport(report(), 'json'), formatJsonReport(report()));
  t.is(formatReport(report(), 'csv'), formatCsvReport(report()));
});

test('reports mask registered secrets wherever they appear', (t) => {
  registerSecret('s3cr3t-pin-4711');
  const r = report({
    rejected: [{ line: 2, kind: 'rejected', column: 'VMPIN', record: 's3cr3t-pin-4711', reason: 'VMPIN s3cr3t-pin-4711 is weak' }],
    error: 'failed with s3cr3t-pin-4711',
  });
  for (const text of [formatCsvReport(r), formatJsonReport(r)]) {
    t.false(text.includes('s3cr3t-pin-4711'));
    t.true(text.includes('[redacted]'));
  }
});
