import test from 'ava';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, LockedError, StorageError, TerminalError, asStorageError, isRetryable } from '../../src/errors/index.js';

async function tempDir(t: { teardown: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pbxsync-errors-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('asStorageError: a file of the state folder that is a folder (EISDIR, real) is a retryable StorageError of the state folder', async (t) => {
  const dir = await tempDir(t);
  await mkdir(path.join(dir, 'pbx.json'));
  const err = await readFile(path.join(dir, 'pbx.json')).catch((e: unknown) => e);
  const storage = asStorageError(err, dir);
  t.true(storage instanceof StorageError);
  t.true(isRetryable(storage));
  t.is(storage!.folder, path.resolve(dir));
  t.is(storage!.cause, err);
  t.regex(storage!.message, /^pbxsync cannot use its own files in .+ \(EISDIR\): EISDIR/);
});

test('asStorageError: a path through a file (ENOTDIR, real) names the failing path\'s folder, also under a wrapping TerminalError', async (t) => {
  const dir = await tempDir(t);
  await writeFile(path.join(dir, 'data'), 'not a folder');
  const raw = await writeFile(path.join(dir, 'data', 'state.json'), '{}').catch((e: unknown) => e);
  const wrapped = new TerminalError('cannot lock the PBX store', { cause: raw });
  const storage = asStorageError(wrapped, '/elsewhere');
  t.true(storage instanceof StorageError);
  t.is(storage!.folder, path.join(dir, 'data'));
  t.is(storage!.cause, wrapped);
});

const codes: Array<[string, boolean]> = [
  ['EACCES', true],
  ['EPERM', true],
  ['EROFS', true],
  ['ENOSPC', true],
  ['EDQUOT', true],
  ['ENOENT', false],
  ['ECONNREFUSED', false],
];
for (const [code, storage] of codes) {
  test(`asStorageError: ${code} → ${storage ? 'StorageError' : 'not one'}`, (t) => {
    const err = Object.assign(new Error(`${code}: failed, open '/var/lib/pbxsync/state.json'`), { code, path: '/var/lib/pbxsync/state.json' });
    const result = asStorageError(err, '/var/lib/pbxsync');
    t.is(result instanceof StorageError, storage);
    if (storage) t.is(result!.folder, '/var/lib/pbxsync');
  });
}

test('asStorageError: configuration errors, a held lock and plain errors are left alone', (t) => {
  const eacces = Object.assign(new Error('EACCES'), { code: 'EACCES' });
  t.is(asStorageError(new ConfigError('mapping unreadable', [], { cause: eacces }), '/s'), undefined);
  t.is(asStorageError(new LockedError('another pbxsync process is applying'), '/s'), undefined);
  t.is(asStorageError(new Error('boom'), '/s'), undefined);
  const already = new StorageError('x', { folder: '/s' });
  t.is(asStorageError(already, '/other'), already);
});
