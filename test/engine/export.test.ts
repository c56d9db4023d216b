import test from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { stringify } from 'csv-stringify/sync';
import { THREECX_COLUMNS } from '../../connectors/csv/columns.js';
import { formatThreeCxCsv, threeCxCsvChunks, threeCxRow } from '../../connectors/csv/export.js';
import { loadConfig } from '../../src/config/load.js';
import { createEngine } from '../../src/engine/engine.js';
import { exportUsers, jsonArrayChunks } from '../../src/engine/export.js';
import { silentLogger } from '../../src/log.js';
import { newUserFields, type PbxUser } from '../../src/model/index.js';
import { CLI, makeWorkspace, staff, threeCxCsv, person } from '../helpers/workspace.js';
import { spawn } from 'node:child_process';

async function* from<T>(items: T[]): AsyncGenerator<T> {
  for (const item of items) yield item;
}

async function joined(chunks: AsyncIterable<string>): Promise<{ text: string; chunks: number }> {
  let text = '';
  let n = 0;
  for await (const c of chunks) {
    text += c;
    n++;
  }
  return { text, chunks: n };
}

const nested = (i: number) => ({ id: `u${i}`, name: `Line\nbreak ${i}`, tags: [], phones: [{ mac: `80:5E:C0:00:00:${String(i).padStart(2, '0')}`, lines: [1, 2] }], options: {} });

for (const count of [0, 1, 3, 2000]) {
  test(`jsonArrayChunks: ${count} items give JSON.stringify(items, null, 2) + newline`, async (t) => {
    const items = Array.from({ length: count }, (_, i) => nested(i));
    const { text, chunks } = await joined(jsonArrayChunks(from(items)));
    t.is(text, JSON.stringify(items, null, 2) + '\n');
    if (count === 2000) t.true(chunks > 1, 'written in pieces');
  });
}

const user = (i: number): PbxUser => ({
  ...newUserFields(),
  id: `id-${i}`,
  extension: String(1000 + i),
  firstName: `First${i}`,
  lastName: i % 2 ? `Müller, geb. "Schmidt"` : `Last${i}`,
  email: `user${i}@example.com`,
  department: 'DEFAULT',
  role: 'users',
  enabled: true,
  vmPin: '7318',
});

test('threeCxCsvChunks: the same text as one stringify of header and every row, in pieces', async (t) => {
  const users = Array.from({ length: 1203 }, (_, i) => user(i));
  const { text, chunks } = await joined(threeCxCsvChunks(from(users)));
  const rows = users.map((u) => {
    const row = threeCxRow(u);
    return THREECX_COLUMNS.map((c) => row[c]);
  });
  t.is(text, stringify([[...THREECX_COLUMNS], ...rows], { record_delimiter: '\r\n' }));
  t.is(chunks, 1 + 3, 'the header, then 500 rows a chunk');
  t.is(await formatThreeCxCsv(users), text);
  t.false(text.includes('7318'));
});

test('export: to stdout and with --out (written aside, renamed in) the users come back in both formats', async (t) => {
  const ws = await makeWorkspace();
  t.is((await ws.cli(['import', await ws.write('staff.csv', threeCxCsv(staff(30)))])).code, 0);
  const csv = await ws.cli(['export', '--format', 'csv']);
  t.is(csv.code, 0, csv.stderr);
  const lines = csv.stdout.split('\r\n');
  t.is(lines.length, 1 + 30 + 1);
  t.true(lines[1]!.startsWith('1100,First0,Last0,'));

  const out = path.join(ws.dir, 'exports', 'users.json');
  await fs.mkdir(path.dirname(out));
  const json = await ws.cli(['export', '--format', 'json', '--out', out]);
  t.is(json.code, 0, json.stderr);
  t.is(json.stdout, '');
  const users = JSON.parse(await fs.readFile(out, 'utf8')) as Array<{ extension: string; managedBy: { source: string; anchor: string } | null; vmPin?: string }>;
  t.is(users.length, 30);
  t.deepEqual(users[0]!.managedBy, { source: 'inbox', anchor: '1100' });
  t.false(users.some((u) => 'vmPin' in u));
  t.deepEqual(await fs.readdir(path.dirname(out)), ['users.json'], 'no temp file left');
});

test('export: a reader that goes away early (a closed pipe) ends the export', async (t) => {
  const ws = await makeWorkspace();
  t.is((await ws.cli(['import', await ws.write('staff.csv', threeCxCsv(staff(600)))])).code, 0);
  const engine = await createEngine(await loadConfig(ws.config), { logger: silentLogger() });
  t.teardown(() => engine.close());
  let received = 0;
  const closedPipe = new Writable({
    highWaterMark: 1024,
    write(chunk: Buffer, _encoding, callback) {
      received += chunk.length;
      // The reader reads the first piece, then closes its end.
      setImmediate(() => callback(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' })));
    },
  });
  closedPipe.on('error', () => undefined);
  await t.throwsAsync(exportUsers(engine, 'csv', closedPipe), { message: /EPIPE/ });
  t.true(received > 0);

  // The CLI piped into a reader that stops early (`| head -1`) ends quietly, like any Unix tool.
  const child = spawn(process.execPath, [CLI, '--config', ws.config, 'export', '--format', 'csv'], { cwd: ws.dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  child.stdout.once('data', () => child.stdout.destroy());
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  t.is(stderr, '');
  t.is(code, 0);
});

test('export --format json shows the status tags of the hosted-PBX guide: New with an e-mail, Setup Required without', async (t) => {
  const ws = await makeWorkspace();
  const file = await ws.write('two.csv', threeCxCsv([person(1001, 'Anna', 'Smith'), person(1002, 'Bob', 'Stone', { EmailAddress: '' })]));
  t.is((await ws.cli(['import', file])).code, 0);
  const json = await ws.cli(['export', '--format', 'json']);
  t.is(json.code, 0, json.stderr);
  const users = JSON.parse(json.stdout) as Array<{ extension: string; status?: string[] }>;
  t.deepEqual(
    users.map((u) => [u.extension, u.status]),
    [
      ['1001', ['New']],
      ['1002', ['Setup Required']],
    ],
  );
});
