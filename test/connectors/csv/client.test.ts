import test from 'ava';
import { createReadStream } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { parse } from 'csv-parse';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CsvFileError,
  detectDelimiter,
  openCsvFile,
  sniffEncoding,
  type CsvDelimiter,
  type CsvEncoding,
  type CsvFile,
  type CsvRow,
} from '../../../connectors/csv/client.js';
import { openCsvFileThreaded } from '../../../connectors/csv/threaded.js';
import { canonicalColumn, THREECX_COLUMNS } from '../../../connectors/csv/columns.js';
import { collect, csvBytes, tempDir, writeCsv, type CsvFileSpec } from './helpers.js';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures/csv');

async function readAll(file: string, options: Parameters<typeof openCsvFile>[1] = {}) {
  const csv = await openCsvFile(file, options);
  const rows: CsvRow[] = await collect(csv.rows);
  return { csv, rows };
}

// ---------------------------------------------------------------------------------------------- pure parts

const sniffTable: Array<[string, number[], CsvEncoding | undefined, number]> = [
  ['UTF-8 BOM', [0xef, 0xbb, 0xbf, 0x4e, 0x75], 'utf8', 3],
  ['UTF-16LE BOM', [0xff, 0xfe, 0x4e, 0x00], 'utf16le', 2],
  ['UTF-16BE BOM', [0xfe, 0xff, 0x00, 0x4e], 'utf16be', 2],
  ['UTF-16LE without BOM (NUL pattern)', [...Buffer.from('Number\tFirstName', 'utf16le')], 'utf16le', 0],
  ['UTF-16BE without BOM (NUL pattern)', [...Buffer.from('Number', 'utf16le').swap16()], 'utf16be', 0],
  ['plain ASCII: needs the full scan', [...Buffer.from('Number,FirstName')], undefined, 0],
  ['Windows-1252 bytes: needs the full scan', [0x4d, 0xfc, 0x6c, 0x6c, 0x65, 0x72], undefined, 0],
  ['empty', [], undefined, 0],
];
for (const [name, bytes, encoding, bomLength] of sniffTable) {
  test(`sniffEncoding: ${name}`, (t) => {
    t.deepEqual(sniffEncoding(Uint8Array.from(bytes)), { encoding, bomLength });
  });
}

const delimiterTable: Array<[string, string, CsvDelimiter]> = [
  ['comma', 'Number,FirstName,LastName', ','],
  ['semicolon (German Excel)', 'Number;FirstName;LastName', ';'],
  ['tab (Excel Unicode text)', 'Number\tFirstName\tLastName', '\t'],
  ['semicolons win over a comma inside a name', 'Number;"Name, First";LastName', ';'],
  ['quoted delimiters do not count', '"a;b;c;d",Number,FirstName', ','],
  ['one column: comma', 'EmailAddress', ','],
  ['tie goes to comma', 'A,B;C', ','],
];
for (const [name, line, expected] of delimiterTable) {
  test(`detectDelimiter: ${name}`, (t) => {
    t.is(detectDelimiter(line), expected);
  });
}

const headerTable: Array<[string, string]> = [
  ['number', 'Number'],
  ['  FIRSTNAME ', 'FirstName'],
  ['First Name', 'FirstName'],
  ['email_address', 'EmailAddress'],
  ['outboundcallerid', 'OutboundCallerID'],
  ['vmpin', 'VMPIN'],
  ['ms365teamsdisabled', 'MS365TeamsDisabled'],
  [' Cost Centre ', 'Cost Centre'],
];
for (const [raw, canonical] of headerTable) {
  test(`canonicalColumn: ${JSON.stringify(raw)} → ${canonical}`, (t) => {
    t.is(canonicalColumn(raw), canonical);
  });
}

test('canonicalColumn maps every 3CX column from its lower-case spelling', (t) => {
  for (const c of THREECX_COLUMNS) t.is(canonicalColumn(c.toLowerCase()), c);
});

// ---------------------------------------------------------------------------------------------- decoding

const people = [
  ['Number', 'FirstName', 'LastName', 'EmailAddress'],
  ['1001', 'Jörg', 'Müller', 'joerg@example.com'],
  ['1002', 'Zoë', 'Ångström', 'zoe@example.com'],
];

const decodingTable: Array<{ name: string; spec: CsvFileSpec; delimiter: CsvDelimiter; encoding: CsvEncoding; bom: boolean }> = [
  { name: 'UTF-8 without BOM, comma', spec: { encoding: 'utf8' }, delimiter: ',', encoding: 'utf8', bom: false },
  { name: 'UTF-8 with BOM (Excel "CSV UTF-8")', spec: { encoding: 'utf8', bom: true }, delimiter: ',', encoding: 'utf8', bom: true },
  {
    name: 'UTF-16LE with BOM and tabs (Excel "Unicode text")',
    spec: { encoding: 'utf16le', bom: true },
    delimiter: '\t',
    encoding: 'utf16le',
    bom: true,
  },
  { name: 'UTF-16LE without BOM', spec: { encoding: 'utf16le' }, delimiter: '\t', encoding: 'utf16le', bom: false },
  { name: 'UTF-16BE with BOM', spec: { encoding: 'utf16be', bom: true }, delimiter: ',', encoding: 'utf16be', bom: true },
  {
    name: 'Windows-1252 with semicolons (German Excel "CSV")',
    spec: { encoding: 'windows1252' },
    delimiter: ';',
    encoding: 'windows1252',
    bom: false,
  },
];
for (const c of decodingTable) {
  test(`decodes ${c.name}`, async (t) => {
    const dir = await tempDir(t);
    const file = await writeCsv(dir, 'people.csv', people.map((r) => r.join(c.delimiter)), c.spec);
    // A tiny chunk size puts multi-byte characters and line ends across chunk boundaries.
    for (const chunkSize of [3, 64 * 1024]) {
      const { csv, rows } = await readAll(file, { chunkSize });
      t.is(csv.encoding, c.encoding);
      t.is(csv.bom, c.bom);
      t.is(csv.delimiter, c.delimiter);
      t.deepEqual(csv.header, ['Number', 'FirstName', 'LastName', 'EmailAddress']);
      t.deepEqual(
        rows.map((r) => [r.line, r.cells.FirstName, r.cells.LastName]),
        [
          [2, 'Jörg', 'Müller'],
          [3, 'Zoë', 'Ångström'],
        ],
      );
    }
  });
}

test('a Windows-1252 file whose only non-ASCII byte is on the last line is still decoded as 1252', async (t) => {
  const dir = await tempDir(t);
  const lines = ['Number,FirstName,LastName'];
  for (let i = 0; i < 5000; i++) lines.push(`${2000 + i},Name${i},Plain`);
  lines.push('9999,Zoë,Müller');
  const file = await writeCsv(dir, 'late.csv', lines, { encoding: 'windows1252' });
  const { csv, rows } = await readAll(file);
  t.is(csv.encoding, 'windows1252');
  t.is(rows.at(-1)?.cells.FirstName, 'Zoë');
  t.is(rows.at(-1)?.line, 5002);
});

test('a configured encoding and delimiter are used as given', async (t) => {
  const dir = await tempDir(t);
  // Valid UTF-8 bytes that are meant as 1252: auto would say UTF-8.
  const file = await writeCsv(dir, 'x.csv', ['Number|FirstName', '1001|Ã¼'], { encoding: 'windows1252' });
  const { csv, rows } = await readAll(file, { encoding: 'windows1252', delimiter: ',' });
  t.is(csv.encoding, 'windows1252');
  t.deepEqual(csv.header, ['Number|FirstName']);
  t.is(rows[0].cells['Number|FirstName'], '1001|Ã¼');
});

test('Excel "sep=;" first line sets the delimiter and is not the header', async (t) => {
  const dir = await tempDir(t);
  const file = await writeCsv(dir, 'sep.csv', ['sep=;', 'Number;FirstName', '1001;Anna, Maria']);
  const { csv, rows } = await readAll(file);
  t.is(csv.delimiter, ';');
  t.is(csv.headerLine, 2);
  t.deepEqual(rows, [{ line: 3, cells: { Number: '1001', FirstName: 'Anna, Maria' } }]);
});

test('blank lines above the header are skipped, for the delimiter too', async (t) => {
  const dir = await tempDir(t);
  const file = await writeCsv(dir, 'blank-top.csv', ['', '', 'Number;FirstName', '1001;Anna, Maria']);
  const { csv, rows } = await readAll(file);
  t.is(csv.delimiter, ';');
  t.is(csv.headerLine, 3);
  t.deepEqual(rows, [{ line: 4, cells: { Number: '1001', FirstName: 'Anna, Maria' } }]);
});

// ---------------------------------------------------------------------------------------------- rows

test('the seed sample row keeps the typographic-quote role cell intact (it is an unquoted field)', async (t) => {
  const file = path.join(FIXTURES, 'seed-000.csv');
  t.true((await readFile(file, 'utf8')).includes('”<rolename=””system_owners””/>”'));
  const { csv, rows } = await readAll(file);
  t.deepEqual(csv.header, [...THREECX_COLUMNS]);
  t.is(rows.length, 1);
  t.is(rows[0].problem, undefined);
  t.is(rows[0].line, 2);
  t.is(rows[0].cells.Role, '”<rolename=””system_owners””/>”');
  t.is(rows[0].cells.Number, '1001');
  t.is(rows[0].cells.Department, 'DEFAULT');
  t.is(rows[0].cells.VMLanguage, '43E89581-DAD8-B6F4-7660-15D48B5E6026');
  t.is(rows[0].cells.AllowLanOnly, '1');
  t.is(rows[0].cells.GoogleSignInDisabled, '');
});

test('headers in any order and spelling arrive canonical; unknown columns are kept; cells are trimmed', async (t) => {
  const dir = await tempDir(t);
  const file = await writeCsv(dir, 'order.csv', [
    ' email address ;LASTNAME;Cost Centre;number;firstname',
    ' ANNA@example.com ; Müller ;  4711 ;1001;"  Anna  "',
  ]);
  const { csv, rows } = await readAll(file);
  t.deepEqual(csv.header, ['EmailAddress', 'LastName', 'Cost Centre', 'Number', 'FirstName']);
  t.deepEqual(rows[0].cells, {
    EmailAddress: 'ANNA@example.com',
    LastName: 'Müller',
    'Cost Centre': '4711',
    Number: '1001',
    FirstName: 'Anna',
  });
});

test('an ASCII-quoted role cell, quoted or typed bare, arrives as the role markup', async (t) => {
  const dir = await tempDir(t);
  const file = await writeCsv(dir, 'roles.csv', [
    'Number,FirstName,Role',
    '1001,Anna,"<rolename=""managers""/>"',
    '1002,Ben,<rolename="users"/>',
  ]);
  const { rows } = await readAll(file);
  t.deepEqual(
    rows.map((r) => [r.cells.Role, r.problem]),
    [
      ['<rolename="managers"/>', undefined],
      ['<rolename="users"/>', undefined],
    ],
  );
});

test('bad rows are reported with line and column while the good rows around them come through', async (t) => {
  const dir = await tempDir(t);
  const file = await writeCsv(dir, 'bad.csv', [
    'Number,FirstName,LastName',
    '1001,Anna,Adams', // 2
    '1002,Ben', // 3: one cell short
    '1003,Cara,Smith, Jr', // 4: unquoted comma
    '', // 5: empty line, skipped
    ',,', // 6: Excel's empty row, skipped
    '1004,Dan,Day', // 7
    '1005,"Eve,Evans', // 8: quote never closed
  ]);
  const { rows } = await readAll(file);
  t.deepEqual(
    rows.map((r) => ({ line: r.line, number: r.cells.Number, problem: r.problem })),
    [
      { line: 2, number: '1001', problem: undefined },
      { line: 3, number: '1002', problem: { message: 'expected 3 cells as in the header, found 2', column: 'LastName' } },
      {
        line: 4,
        number: '1003',
        problem: { message: 'expected 3 cells as in the header, found 4 (an unquoted delimiter in a cell?)' },
      },
      { line: 7, number: '1004', problem: undefined },
      { line: 8, number: undefined, problem: {
          message: 'a quote opened on line 8 is never closed; nothing after it could be read',
          column: 'FirstName',
        },
      },
    ],
  );
});

test('an unclosed quote "closed" by a stray quote lines later is reported, and reading goes on', async (t) => {
  const dir = await tempDir(t);
  const file = await writeCsv(dir, 'stray.csv', [
    'Number;FirstName;LastName',
    '1001;"Anna;Adams', // 2: quote opens here ...
    '1002;Ben;Baker',
    '1003;"Cara";Cole', // 4: ... and this quote ends it, with the same cell count by chance
    '1004;Dan;Day', // 5
  ]);
  const { rows } = await readAll(file);
  t.deepEqual(
    rows.map((r) => [r.line, r.cells.Number, r.problem]),
    [
      [2, '1001', { message: 'the cell spans lines 2-4; a quote is probably not closed', column: 'FirstName' }],
      [5, '1004', undefined],
    ],
  );
});

test('multi-line cells in extra columns are allowed and later line numbers stay right (CRLF inside quotes)', async (t) => {
  const dir = await tempDir(t);
  const file = await writeCsv(dir, 'notes.csv', [
    'Number,FirstName,Address',
    '1001,Anna,"Hauptstr. 1\r\n10115 Berlin\r\nGermany"', // lines 2-4
    '1002,Ben,"x"', // line 5
  ]);
  const { rows } = await readAll(file);
  t.deepEqual(
    rows.map((r) => [r.line, r.cells.Address, r.problem]),
    [
      [2, 'Hauptstr. 1\r\n10115 Berlin\r\nGermany', undefined],
      [5, 'x', undefined],
    ],
  );
});

test('line ends may be LF, CRLF or bare CR (old Excel for Mac), even mixed', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'eol.csv');
  await writeFile(file, 'Number,FirstName\r\n1001,A\n1002,B\r1003,C');
  const { rows } = await readAll(file);
  t.deepEqual(
    rows.map((r) => [r.line, r.cells.Number]),
    [
      [2, '1001'],
      [3, '1002'],
      [4, '1003'],
    ],
  );
});

test('duplicate free-form header names are numbered; a duplicate 3CX column is refused', async (t) => {
  const dir = await tempDir(t);
  const ok = await writeCsv(dir, 'notes.csv', ['Number,Notes,FirstName,Notes', '1001,a,Anna,b']);
  const { csv, rows } = await readAll(ok);
  t.deepEqual(csv.header, ['Number', 'Notes', 'FirstName', 'Notes (2)']);
  t.is(rows[0].cells['Notes (2)'], 'b');

  const bad = await writeCsv(dir, 'dup.csv', ['Number,FirstName,number', '1001,Anna,1002']);
  const err = await t.throwsAsync(openCsvFile(bad), { instanceOf: CsvFileError });
  t.regex(err?.message ?? '', /column Number appears twice in the header \(columns 1 and 3\)/);
});

test('empty header cells drop their column from the cells', async (t) => {
  const dir = await tempDir(t);
  const file = await writeCsv(dir, 'blank.csv', ['Number;FirstName;;', '1001;Anna;;']);
  const { csv, rows } = await readAll(file);
  t.deepEqual(csv.header, ['Number', 'FirstName', '', '']);
  t.deepEqual(rows[0].cells, { Number: '1001', FirstName: 'Anna' });
});

/** Each refusal: its message (which names the file) and its reason (which does not). */
const unusable: Array<[string, Buffer | undefined, RegExp, string]> = [
  ['missing file', undefined, /cannot read .*missing\.csv/, 'cannot read the file (ENOENT)'],
  ['empty file', Buffer.alloc(0), /is empty/, 'the file is empty'],
  ['only a BOM', Buffer.from([0xef, 0xbb, 0xbf]), /has no header line/, 'no header line'],
  ['only empty lines', csvBytes(['', '', '']), /has no header line/, 'no header line'],
  ['a duplicate 3CX column', csvBytes(['Number,FirstName,number', '1001,Anna,1002']), /column Number appears twice in the header/, 'column Number appears twice in the header (columns 1 and 3)'],
];
/** Both readers: the worker-thread one must refuse and stop exactly like the in-thread one. */
const OPENERS: Array<[string, typeof openCsvFile]> = [
  ['openCsvFile', openCsvFile],
  ['openCsvFileThreaded', openCsvFileThreaded],
];

for (const [name, bytes, message, reason] of unusable) {
  for (const [opener, openFile] of OPENERS) {
    test(`${opener} refuses: ${name}`, async (t) => {
      const dir = await tempDir(t);
      const file = path.join(dir, name === 'missing file' ? 'missing.csv' : 'f.csv');
      if (bytes) await writeFile(file, bytes);
      const err = await t.throwsAsync(openFile(file), { instanceOf: CsvFileError });
      t.regex(err?.message ?? '', message);
      t.true(err?.message.includes(file));
      t.is((err as CsvFileError).reason, reason);
    });
  }
}

/** A file of `count` rows `Number,FirstName`, numbered from 10000, on lines 2 onwards. */
async function numberedFile(dir: string, name: string, count: number): Promise<string> {
  const lines = ['Number,FirstName'];
  for (let i = 0; i < count; i++) lines.push(`${10000 + i},N${i}`);
  return writeCsv(dir, name, lines);
}

/** Lines of the rows an aborted read delivered, read through `rows` or through `batches`. */
const ABORTED_VIEWS: Array<[string, (csv: CsvFile, onRow: (line: number) => void) => Promise<void>]> = [
  ['rows', async (csv, onRow) => {
    for await (const row of csv.rows) onRow(row.line);
  }],
  ['batches', async (csv, onRow) => {
    for await (const batch of csv.batches) for (const row of batch) onRow(row.line);
  }],
];

for (const [opener, openFile] of OPENERS) {
  for (const [view, readLines] of ABORTED_VIEWS) {
    test(`an aborted read stops with the abort reason, after the rows read before it (${opener}, ${view})`, async (t) => {
      const dir = await tempDir(t);
      const file = await numberedFile(dir, 'long.csv', 20_000);
      const ac = new AbortController();
      const csv = await openFile(file, { signal: ac.signal, chunkSize: 256 });
      const seen: number[] = [];
      await t.throwsAsync(
        readLines(csv, (line) => {
          seen.push(line);
          if (seen.length === 10) ac.abort(new Error('stop now'));
        }),
        { message: /stop now/ },
      );
      t.true(seen.length >= 10 && seen.length < 20_000, `${seen.length} rows`);
      // A prefix of the file: lines 2, 3, 4, … without a gap.
      t.deepEqual(seen, seen.map((_, i) => i + 2));
      await csv.close();
    });
  }

  test(`batches hold the rows in order, never empty, a chunk's worth at a time (${opener})`, async (t) => {
    const dir = await tempDir(t);
    const file = await numberedFile(dir, 'b.csv', 3000);
    const expected = await collect((await openCsvFile(file)).rows);
    const batches = await collect((await openFile(file, { chunkSize: 4096 })).batches);
    t.true(batches.length > 1, `${batches.length} batches`);
    t.true(batches.every((b) => b.length > 0));
    t.deepEqual(batches.flat(), expected);
  });
}

test('100,000 rows × 45 columns: every row arrives with the cells csv-parse reads in it', async (t) => {
  // How fast this is belongs to the benchmark (bench/import.ts), not to a timer here.
  const dir = await tempDir(t);
  const lines: string[] = [THREECX_COLUMNS.join(',')];
  for (let i = 0; i < 100_000; i++) {
    lines.push(
      THREECX_COLUMNS.map((c, j) =>
        c === 'Number' ? String(100000 + i) : c === 'Role' ? '"<rolename=""users""/>"' : j % 3 === 0 ? '' : `v${j}`,
      ).join(','),
    );
  }
  const file = await writeCsv(dir, 'big.csv', lines);

  const records: string[][] = [];
  for await (const record of createReadStream(file).pipe(parse())) records.push(record as string[]);
  const csv = await openCsvFile(file);
  let count = 0;
  for await (const row of csv.rows) {
    t.is(row.problem, undefined);
    const record = records[++count];
    if (count % 1000 === 1 || count === 100_000) t.deepEqual(Object.values(row.cells), record, `row ${count}`);
    else if (row.cells.Number !== record[0]) t.fail(`row ${count}: ${row.cells.Number}`);
  }
  t.is(count, 100_000);
  t.is(records.length, 100_001);
});
