import test from 'ava';
import { stat } from 'node:fs/promises';
import { openCsvFile, type CsvFile, type CsvRow, type OpenCsvOptions } from '../../../connectors/csv/client.js';
import { THREECX_COLUMNS } from '../../../connectors/csv/columns.js';
import { THREAD_MIN_BYTES, ROWS_PER_BATCH, openCsvFileAuto, openCsvFileThreaded } from '../../../connectors/csv/threaded.js';
import { collect, tempDir, writeCsv, type CsvFileSpec } from './helpers.js';

// Refusals and aborts of both readers: client.test.ts.

/** What a reader delivers: the file's properties and every row. */
async function readAll(csv: CsvFile) {
  const rows: CsvRow[] = await collect(csv.rows);
  const { encoding, bom, delimiter, header, headerLine } = csv;
  return { encoding, bom, delimiter, header, headerLine, rows };
}

const files: Array<[string, string[], CsvFileSpec?]> = [
  ['3CX columns, UTF-8 with BOM', ['Number,FirstName,LastName,Role', '1001,Anna,Adams,"<rolename=""users""/>"', '1002,Ben,Baker,”<rolename=””managers””/>”'], { bom: true }],
  ['UTF-16LE with tabs, as Excel "Unicode text" writes it', ['Number\tFirstName\tLastName', '1001\tJörg\tMüller', '1002\tZoë\tÅngström'], { encoding: 'utf16le', bom: true }],
  ['Windows-1252 with semicolons', ['Number;FirstName;LastName', '1001;Jörg;Müller'], { encoding: 'windows1252' }],
  ['a sep= line and blank lines above the header', ['sep=;', 'Number;FirstName;;', '1001;Anna;;', '', '1002;Ben;x;'], {}],
  ['bad rows between good ones', ['Number,FirstName,LastName', '1001,Anna,Adams', '1002,Ben', '1003,Cara,Smith, Jr', '', ',,', '1004,Dan,Day', '1005,"Eve,Evans'], {}],
  ['a quote closed lines later', ['Number;FirstName;LastName', '1001;"Anna;Adams', '1002;Ben;Baker', '1003;"Cara";Cole', '1004;Dan;Day'], {}],
  ['multi-line cells in an extra column', ['Number,FirstName,Address', '1001,Anna,"Hauptstr. 1\r\n10115 Berlin"', '1002,Ben,"x"'], {}],
  ['duplicate free-form columns', ['Number,Notes,FirstName,Notes', '1001,a,Anna,b'], {}],
];

for (const [name, lines, spec] of files) {
  test(`the reader thread delivers what the in-thread reader does: ${name}`, async (t) => {
    const dir = await tempDir(t);
    const file = await writeCsv(dir, 'f.csv', lines, spec);
    // A tiny chunk size puts characters, quotes and line ends across chunk boundaries in the worker too.
    for (const options of [{}, { chunkSize: 3 }] as OpenCsvOptions[]) {
      const expected = await readAll(await openCsvFile(file, options));
      t.true(expected.rows.length > 0);
      t.deepEqual(await readAll(await openCsvFileThreaded(file, options)), expected);
    }
  });
}

test('more rows than one batch arrive complete and in order, with their line numbers', async (t) => {
  const dir = await tempDir(t);
  const lines = [THREECX_COLUMNS.join(',')];
  const count = ROWS_PER_BATCH * 5 + 17;
  for (let i = 0; i < count; i++) {
    // Every 100th row is one cell short: such rows travel as objects among the packed ones.
    const cells = THREECX_COLUMNS.map((c, j) => (c === 'Number' ? String(10000 + i) : j % 3 === 0 ? '' : `v${i}.${j}`));
    lines.push((i % 100 === 99 ? cells.slice(0, -1) : cells).join(','));
  }
  const file = await writeCsv(dir, 'many.csv', lines);
  const expected = await readAll(await openCsvFile(file));
  const got = await readAll(await openCsvFileThreaded(file));
  t.is(got.rows.length, count);
  t.is(got.rows.filter((r) => r.problem).length, Math.floor(count / 100));
  t.deepEqual(got, expected);
});

test('openCsvFileAuto reads a large file on the thread and a small one in-thread, with the same rows', async (t) => {
  const dir = await tempDir(t);
  const lines = [THREECX_COLUMNS.join(',')];
  for (let i = 0, bytes = 0; bytes < THREAD_MIN_BYTES; i++) {
    const line = THREECX_COLUMNS.map((c, j) => (c === 'Number' ? String(100000 + i) : c === 'Role' ? '"<rolename=""users""/>"' : `value-${i}-${j}`)).join(',');
    lines.push(line);
    bytes += line.length + 2;
  }
  const big = await writeCsv(dir, 'big.csv', lines);
  const small = await writeCsv(dir, 'small.csv', lines.slice(0, 11));
  t.true((await stat(big)).size >= THREAD_MIN_BYTES);
  t.true((await stat(small)).size < THREAD_MIN_BYTES);
  const bigFile = await openCsvFileAuto(big);
  t.true(bigFile.thread);
  const bigRows = await readAll(bigFile);
  t.deepEqual(bigRows, await readAll(await openCsvFile(big)));
  t.is(bigRows.rows.length, lines.length - 1);
  t.is(bigRows.rows.at(-1)!.cells.Number, String(100000 + lines.length - 2));
  const smallFile = await openCsvFileAuto(small);
  t.false(smallFile.thread);
  t.deepEqual(await readAll(smallFile), await readAll(await openCsvFile(small)));
});
