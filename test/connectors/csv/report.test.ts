import test from 'ava';
import { parse } from 'csv-parse/sync';
import {
  formatCsvReport,
  formatJsonReport,
  formatReport,
  rejectionFromIssue,
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
    { line: 3, column: 'Number', reason: 'no value in key column Number' },
    { line: 4, column: 'Number', record: '1001', reason: 'duplicate extension 1001, first on line 2' },
  ],
  summary: { create: 1 },
  held: null,
  ...overrides,
});

test('rejectionFromIssue keeps line, column, record and message', (t) => {
  t.deepEqual(
    rejectionFromIssue({ source: 'hr', file: 'f', line: 4, field: 'Number', record: '1001', message: 'dup' }),
    { line: 4, column: 'Number', record: '1001', reason: 'dup' },
  );
  t.deepEqual(rejectionFromIssue({ source: 'hr', message: 'file is empty' }), { line: 0, reason: 'file is empty' });
});

test('CSV report: line,column,record,reason, then file-level rows', (t) => {
  const text = formatCsvReport(report({ error: 'boom', held: 'too many deletions' }));
  t.deepEqual(parse(text), [
    ['line', 'column', 'record', 'reason'],
    ['3', 'Number', '', 'no value in key column Number'],
    ['4', 'Number', '1001', 'duplicate extension 1001, first on line 2'],
    ['', '', '', 'file not processed: boom'],
    ['', '', '', 'plan held: too many deletions'],
  ]);
});

test('CSV report: cells that Excel would run as formulas are defused', (t) => {
  const text = formatCsvReport(report({ rejected: [{ line: 2, record: '=HYPERLINK("http://x")', reason: '+1 bad' }] }));
  t.deepEqual(parse(text)[1], ['2', '', `'=HYPERLINK("http://x")`, `'+1 bad`]);
});

test('JSON report round-trips', (t) => {
  t.deepEqual(JSON.parse(formatJsonReport(report())), report());
  t.is(formatReport(report(), 'json'), formatJsonReport(report()));
  t.is(formatReport(report(), 'csv'), formatCsvReport(report()));
});

test('reports mask registered secrets wherever they appear', (t) => {
  registerSecret('s3cr3t-pin-4711');
  const r = report({
    rejected: [{ line: 2, column: 'VMPIN', record: 's3cr3t-pin-4711', reason: 'VMPIN s3cr3t-pin-4711 is weak' }],
    error: 'failed with s3cr3t-pin-4711',
  });
  for (const text of [formatCsvReport(r), formatJsonReport(r)]) {
    t.false(text.includes('s3cr3t-pin-4711'));
    t.true(text.includes('[redacted]'));
  }
});
