import test from 'ava';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { readCsvFile } from '../../../connectors/csv/read.js';
import { createCsvSource } from '../../../connectors/csv/source.js';
import { ConfigError } from '../../../src/errors/index.js';
import type { CsvSourceSettings, SourceConfig } from '../../../src/config/types.js';
import { byType, collect, csvSettings, tempDir, writeCsv } from './helpers.js';

async function read(file: string, overrides: Parameters<typeof csvSettings>[1] = {}, dir = path.dirname(file)) {
  return byType(await collect(readCsvFile({ source: 'hr', file, settings: csvSettings(dir, overrides) })));
}

test('good rows become identities; bad rows become issues; the read is complete', async (t) => {
  const dir = await tempDir(t);
  const file = await writeCsv(dir, 'u.csv', [
    'Number;FirstName;LastName;EmailAddress',
    '1001;Anna;Adams;anna@example.com',
    ';Nokey;Person;',
    '1002;Ben',
    '1003;Cara;Cole;cara@example.com',
    ';Dora;Dunn;Dora@Example.com',
  ]);
  const { identities, issues, ends } = await read(file);
  // keyColumn auto: the Number when filled, else the e-mail (which recognises the row in later files).
  t.deepEqual(
    identities.map((i) => [i.anchor, i.matchBound, i.attributes.FirstName, i.origin]),
    [
      ['1001', 'extension', 'Anna', { file, line: 2 }],
      ['1003', 'extension', 'Cara', { file, line: 5 }],
      ['dora@example.com', 'email', 'Dora', { file, line: 6 }],
    ],
  );
  t.deepEqual(issues, [
    {
      source: 'hr',
      file,
      line: 3,
      field: 'EmailAddress',
      message: 'no Number and no EmailAddress: a row without an extension needs its e-mail address, which recognises it in later files',
    },
    {
      source: 'hr',
      file,
      line: 4,
      field: 'LastName',
      record: '1002',
      message: 'expected 4 cells as in the header, found 2',
    },
  ]);
  t.deepEqual(ends, [{ type: 'end', mode: 'partial', complete: true }]);
});

test('a key seen twice in one file: the first row wins, the second is rejected', async (t) => {
  const dir = await tempDir(t);
  const file = await writeCsv(dir, 'dup.csv', [
    'Number,FirstName',
    '1000,Zed',
    '1001,Anna',
    '1001,Anne',
  ]);
  const { identities, issues } = await read(file);
  t.deepEqual(
    identities.map((i) => [i.anchor, i.attributes.FirstName]),
    [
      ['1000', 'Zed'],
      ['1001', 'Anna'],
    ],
  );
  t.deepEqual(issues, [
    { source: 'hr', file, line: 4, field: 'Number', record: '1001', message: 'duplicate extension 1001, first on line 3' },
  ]);
});

test('a mixed file: a Number seen twice and an e-mail seen twice (rows without Number) are each named by their column', async (t) => {
  const dir = await tempDir(t);
  const file = await writeCsv(dir, 'mixed.csv', ['Number,FirstName,EmailAddress', '1001,Anna,anna@x.com', ',Bob,bob@x.com', '1001,Anne,anne@x.com', ',Bobby,BOB@x.com']);
  const { identities, issues } = await read(file);
  t.deepEqual(identities.map((i) => i.anchor), ['1001', 'bob@x.com']);
  t.deepEqual(issues, [
    { source: 'hr', file, line: 4, field: 'Number', record: '1001', message: 'duplicate extension 1001, first on line 2' },
    { source: 'hr', file, line: 5, field: 'EmailAddress', record: 'bob@x.com', message: 'duplicate e-mail address bob@x.com, first on line 3' },
  ]);
});

test('auto key without Number: the lower-cased e-mail, duplicates found case-insensitively', async (t) => {
  const dir = await tempDir(t);
  const file = await writeCsv(dir, 'mail.csv', ['FirstName,EmailAddress', 'Anna,Anna@Example.com', 'Anne,anna@example.COM']);
  const { identities, issues } = await read(file);
  t.deepEqual(
    identities.map((i) => i.anchor),
    ['anna@example.com'],
  );
  t.is(issues[0].message, 'duplicate e-mail address anna@example.com, first on line 2');
});

const endTable: Array<{ name: string; mode: 'upsert' | 'snapshot'; lines: string[]; end: object }> = [
  {
    name: 'upsert, clean',
    mode: 'upsert',
    lines: ['Number,FirstName', '1001,Anna'],
    end: { type: 'end', mode: 'partial', complete: true },
  },
  {
    name: 'snapshot, clean',
    mode: 'snapshot',
    lines: ['Number,FirstName', '1001,Anna'],
    end: { type: 'end', mode: 'full', complete: true },
  },
  {
    name: 'snapshot with only a duplicate: still the whole population',
    mode: 'snapshot',
    lines: ['Number,FirstName', '1001,Anna', '1001,Anne'],
    end: { type: 'end', mode: 'full', complete: true },
  },
  {
    name: 'upsert with a broken row: still complete (nothing is removed in upsert anyway)',
    mode: 'upsert',
    lines: ['Number,FirstName', '1001,Anna', '1002'],
    end: { type: 'end', mode: 'partial', complete: true },
  },
  {
    name: 'snapshot with a broken row: incomplete, so nobody is removed',
    mode: 'snapshot',
    lines: ['Number,FirstName', '1001,Anna', '1002'],
    end: {
      type: 'end',
      mode: 'full',
      complete: false,
      note: '1 row was rejected, so this snapshot may miss people; nobody is removed on its account',
    },
  },
];
for (const c of endTable) {
  test(`end event: ${c.name}`, async (t) => {
    const dir = await tempDir(t);
    const file = await writeCsv(dir, 'f.csv', c.lines);
    const { ends } = await read(file, { mode: c.mode });
    t.deepEqual(ends, [c.end]);
  });
}

// The issue names the file (issue.file); its message does not again ("f.csv: f.csv: …" in every output).
const fileFailures: Array<{ name: string; content: string | undefined; field?: string; message: RegExp; settings?: Partial<CsvSourceSettings> }> = [
  { name: 'missing file', content: undefined, message: /^cannot read the file \(ENOENT\)$/ },
  { name: 'empty file', content: '', message: /^the file is empty$/ },
  { name: 'a duplicate column', content: 'Number,FirstName,FirstName\n1001,Anna,Anne\n', message: /^column FirstName appears twice in the header \(columns 2 and 3\)$/ },
  // keyColumn auto: Number, else EmailAddress; a header with neither lacks the key, and says one of them is needed.
  {
    name: 'no key column',
    content: 'FirstName,LastName\nAnna,Adams\n',
    field: 'EmailAddress',
    message: /^the header has no key column: one of Number or EmailAddress is needed to recognise each row; nothing was read$/,
  },
  { name: 'no FirstName', content: 'Number,LastName\n1001,Adams\n', field: 'FirstName', message: /^the header has no column FirstName \(required\); nothing was read$/ },
  { name: 'no FirstName, keyed by e-mail', content: 'EmailAddress,LastName\na@x.com,Adams\n', field: 'FirstName', message: /^the header has no column FirstName \(required\); nothing was read$/ },
  // A text file that is no 3CX CSV: FirstName is a required column, not a key column; the key is said apart.
  {
    name: 'not a 3CX file',
    content: 'this is,not,a pbx file\n1,2,3\n',
    field: 'FirstName',
    message: /^the header has no column FirstName \(required\), and no key column: one of Number or EmailAddress is needed to recognise each row; nothing was read$/,
  },
  {
    name: 'no configured key column',
    content: 'Number,FirstName\n1001,Anna\n',
    settings: { keyColumn: 'employeeId' },
    field: 'employeeId',
    message: /^the header has no key column employeeId \(the source's keyColumn\); nothing was read$/,
  },
];
for (const c of fileFailures) {
  for (const mode of ['upsert', 'snapshot'] as const) {
    test(`${c.name} (${mode}): one issue, then an incomplete end`, async (t) => {
      const dir = await tempDir(t);
      const file = path.join(dir, 'f.csv');
      if (c.content !== undefined) await writeFile(file, c.content);
      const events = await collect(readCsvFile({ source: 'hr', file, settings: csvSettings(dir, { ...c.settings, mode }) }));
      t.is(events.length, 2);
      const [issue, end] = events;
      t.is(issue.type, 'issue');
      if (issue.type === 'issue') {
        t.regex(issue.issue.message, c.message);
        t.is(issue.issue.field, c.field);
        t.is(issue.issue.source, 'hr');
        t.is(issue.issue.file, file);
      }
      t.deepEqual(end, { type: 'end', mode: mode === 'snapshot' ? 'full' : 'partial', complete: false });
    });
  }
}

test('an unreadable file is one issue and an incomplete end', async (t) => {
  if (process.getuid?.() === 0) {
    // root reads files whatever their mode; a directory stands in for an unreadable file then.
    const dir = await tempDir(t);
    const { issues, ends } = await read(dir, {}, dir);
    t.is(issues.length, 1);
    t.is(issues[0].message, 'not a regular file');
    t.false(ends[0].type === 'end' && ends[0].complete);
    return;
  }
  const dir = await tempDir(t);
  const file = await writeCsv(dir, 'locked.csv', ['Number,FirstName', '1001,Anna']);
  await chmod(file, 0o000);
  const { issues, ends } = await read(file);
  t.is(issues.length, 1);
  t.false(ends[0].type === 'end' && ends[0].complete);
});

test('a read cancelled midway ends incomplete with an issue saying so', async (t) => {
  const dir = await tempDir(t);
  const lines = ['Number,FirstName'];
  // Several read chunks: the rows come a chunk at a time, and the abort lands after the first.
  for (let i = 0; i < 20_000; i++) lines.push(`${100000 + i},N${i}`);
  const file = await writeCsv(dir, 'big.csv', lines);
  const ac = new AbortController();
  const events = [];
  for await (const e of readCsvFile({ source: 'hr', file, settings: csvSettings(dir, { mode: 'snapshot' }), signal: ac.signal })) {
    events.push(e);
    if (events.length === 1) ac.abort();
  }
  const { identities, issues, ends } = byType(events);
  t.true(identities.length > 0 && identities.length < 20_000, `${identities.length} identities before the abort`);
  t.is(issues.at(-1)?.message, 'the read was cancelled before the end of the file');
  t.deepEqual(ends, [{ type: 'end', mode: 'full', complete: false }]);
});

test('good rows come as identities events a batch at a time, cut where an issue comes between, in file order', async (t) => {
  const dir = await tempDir(t);
  const file = await writeCsv(dir, 'order.csv', ['Number,FirstName', '1001,Anna', '1002,Ben', ',NoKey', '1003,Cara', '1001,Again', '1004,Dan', '1005,Eve']);
  const events = await collect(readCsvFile({ source: 'hr', file, settings: csvSettings(dir) }));
  const order = events.flatMap((e) => (e.type === 'identities' ? e.identities.map((i) => i.anchor) : e.type === 'issue' ? [`issue@${e.issue.line}`] : [e.type]));
  t.deepEqual(order, ['1001', '1002', 'issue@4', '1003', 'issue@6', '1004', '1005', 'end']);
  // Rows that arrived together travel together.
  const first = events[0];
  t.deepEqual(first.type === 'identities' ? first.identities.map((i) => i.anchor) : first.type, ['1001', '1002']);
  t.true(events.every((e) => e.type !== 'identity'));
});

test('a configured key column is used, canonicalised', async (t) => {
  const dir = await tempDir(t);
  const file = await writeCsv(dir, 'k.csv', ['Number,FirstName,EmailAddress', '1001,Anna,ANNA@x.com']);
  const { identities } = await read(file, { keyColumn: 'emailaddress' });
  t.deepEqual(
    identities.map((i) => i.anchor),
    ['anna@x.com'],
  );
});

// ---------------------------------------------------------------------------------------------- source

const sourceConfig = (dir: string, overrides: Partial<SourceConfig> = {}): SourceConfig => ({
  name: 'hr',
  type: 'csv',
  mapping: '/etc/pbxsync/mappings/3cx-csv.yml',
  csv: csvSettings(dir, { mode: 'snapshot' }),
  settings: {},
  ...overrides,
});

test('createCsvSource: read({ input }) reads that file', async (t) => {
  const dir = await tempDir(t);
  const file = await writeCsv(dir, 'u.csv', ['Number,FirstName', '1001,Anna']);
  const source = createCsvSource(sourceConfig(dir));
  t.is(source.name, 'hr');
  t.is(source.kind, 'csv');
  t.is(source.mapping, '/etc/pbxsync/mappings/3cx-csv.yml');
  const { identities, ends } = byType(await collect(source.read({ full: true, input: file })));
  t.deepEqual(
    identities.map((i) => [i.source, i.anchor]),
    [['hr', '1001']],
  );
  t.deepEqual(ends, [{ type: 'end', mode: 'full', complete: true }]);
});

test('createCsvSource: a read() without input is empty, also a full one with files in processed/ (the engine names the input applied last)', async (t) => {
  const dir = await tempDir(t);
  await writeCsv(dir, 'waiting.csv', ['Number,FirstName', '1001,Anna']);
  const config = sourceConfig(dir);
  const source = createCsvSource(config);
  t.deepEqual(await collect(source.read({ full: false })), [{ type: 'end', mode: 'partial', complete: true }]);
  const nothing = [
    {
      type: 'end',
      mode: 'partial',
      complete: true,
      note: 'no input recorded as applied by this source (none applied yet, or none since an upgrade); nothing to reconcile until a file is applied',
    },
  ];
  // Nothing applied yet: a full read has nothing to re-apply (a waiting file is the watcher's, not ours).
  t.deepEqual(await collect(source.read({ full: true })), nothing);

  // processed/ is no record of what was applied last (an approved file stays in failed/, an import elsewhere).
  const processed = config.csv!.processed;
  await mkdir(processed, { recursive: true });
  await writeFile(path.join(processed, 'latest.csv'), 'Number,FirstName\n1001,Anna\n1002,Bob\n');
  t.deepEqual(await collect(source.read({ full: true })), nothing);
});

test('createCsvSource refuses a source that is not CSV or has no csv settings', (t) => {
  t.throws(() => createCsvSource(sourceConfig('/tmp', { type: 'ldap' })), { instanceOf: ConfigError });
  const err = t.throws(() => createCsvSource(sourceConfig('/tmp', { csv: undefined })), { instanceOf: ConfigError });
  t.is(err?.problems[0]?.path, 'sources.hr.csv');
});
