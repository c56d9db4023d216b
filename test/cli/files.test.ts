import test from 'ava';
import { closeSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { inputFile, outFile, writeFileAtomically } from '../../src/cli/files.js';
import { PbxsyncError, UsageError } from '../../src/errors/index.js';
import { makeWorkspace, person, threeCxCsv } from '../helpers/workspace.js';

async function tempDir(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pbxsync-files-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

test('outFile: a file in an existing folder; a missing folder or a folder as the file is a usage error, and nothing is created', async (t) => {
  const dir = await tempDir(t);
  t.is(await outFile('--out', path.join(dir, 'e.csv')), path.join(dir, 'e.csv'));
  const missing = path.join(dir, 'misc', 'sub', 'e.csv');
  const err = await t.throwsAsync(outFile('--out', missing), { instanceOf: UsageError });
  t.is(err?.message, `--out ${missing}: the folder ${path.join(dir, 'misc', 'sub')} does not exist; create it first`);
  await t.throwsAsync(outFile('--out', dir), { instanceOf: UsageError, message: /is a folder/ });
  await fs.writeFile(path.join(dir, 'plain'), '');
  await t.throwsAsync(outFile('--out', path.join(dir, 'plain', 'e.csv')), { instanceOf: UsageError, message: /does not exist/ });
  t.deepEqual(await fs.readdir(dir), ['plain']);
});

test('inputFile: a readable regular file; a missing path or a folder is a usage error', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'a.csv');
  await fs.writeFile(file, 'Number,FirstName\n');
  t.is(await inputFile('import:', file), file);
  await t.throwsAsync(inputFile('import:', path.join(dir, 'nope.csv')), { instanceOf: UsageError, message: /nope\.csv does not exist$/ });
  await t.throwsAsync(inputFile('import:', path.join(dir, 'a.csv', 'x')), { instanceOf: UsageError, message: /does not exist$/ });
  await t.throwsAsync(inputFile('import:', dir), { instanceOf: UsageError, message: /is a folder; name a CSV file$/ });
  if (process.getuid?.() !== 0) {
    // (root reads files whatever their mode)
    await fs.chmod(file, 0o000);
    await t.throwsAsync(inputFile('import:', file), { instanceOf: UsageError, message: /cannot be read \(EACCES\)$/ });
  }
});

test('writeFileAtomically: the file appears whole; a write error rejects naming the file, leaves nothing behind and is never an unhandled stream error', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'e.csv');
  await writeFileAtomically(file, async (out) => {
    out.write('a,b\r\n');
  });
  t.is(await fs.readFile(file, 'utf8'), 'a,b\r\n');

  // The descriptor goes away under the stream: its next write fails after `write` returned, an 'error'
  // event with nobody waiting for it (it ended the process before).
  const broken = path.join(dir, 'broken.csv');
  const err = await t.throwsAsync(
    writeFileAtomically(broken, async (out) => {
      out.write('a');
      await delay(20);
      closeSync((out as unknown as { fd: number }).fd);
      out.write('b');
      await delay(20);
    }),
    { instanceOf: PbxsyncError },
  );
  t.regex(err?.message ?? '', new RegExp(`^cannot write ${broken.replace(/[.]/g, '\\.')}: EBADF`));
  t.deepEqual(await fs.readdir(dir), ['e.csv'], 'no temp file, no partial file');

  // Opening the temp file fails (the folder went away since it was checked): a rejection too.
  await t.throwsAsync(writeFileAtomically(path.join(dir, 'gone', 'e.csv'), async () => undefined), {
    instanceOf: PbxsyncError,
    message: /^cannot write .*gone\/e\.csv: ENOENT/,
  });

  // An error of the writer's own is passed on unchanged.
  const own = new Error('the store cannot be read');
  t.is(await t.throwsAsync(writeFileAtomically(path.join(dir, 'x.csv'), async () => Promise.reject(own))), own);
  t.deepEqual(await fs.readdir(dir), ['e.csv']);
});

test('export --out and plan --out into a folder that does not exist: exit 2 naming the folder, no stack trace, nothing created', async (t) => {
  const ws = await makeWorkspace();
  t.is((await ws.cli(['import', await ws.write('a.csv', threeCxCsv([person(1001, 'Anna', 'Smith')]))])).code, 0);
  for (const args of [['export'], ['export', '--format', 'json'], ['plan']]) {
    const out = path.join(ws.dir, 'misc', 'sub', 'out.file');
    const r = await ws.cli([...args, '--out', out]);
    t.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    t.is(r.stderr, `pbxsync: --out ${out}: the folder ${path.dirname(out)} does not exist; create it first\n`);
    const json = await ws.cli([...args, '--out', out, '--json']);
    t.is(json.code, 2);
    t.deepEqual(JSON.parse(json.stdout), { error: `--out ${out}: the folder ${path.dirname(out)} does not exist; create it first` });
  }
  await t.throwsAsync(fs.stat(path.join(ws.dir, 'misc')), { code: 'ENOENT' });

  // In a folder that exists, both write their file.
  const plan = await ws.cli(['plan', '--out', 'p.json']);
  t.is(plan.code, 0, plan.stderr);
  t.is((JSON.parse(await fs.readFile(path.join(ws.dir, 'p.json'), 'utf8')) as { version: number }).version, 1);
});
