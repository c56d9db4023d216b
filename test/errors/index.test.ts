import test from 'ava';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, LockedError, RetryableError, StorageError, TerminalError, asStorageError, describeError, isRetryable } from '../../src/errors/index.js';

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

/** How often `part` is in `text`. */
function count(text: string, part: string): number {
  return text.split(part).length - 1;
}

test('describeError: a wrapper that quotes its cause names it once; the cause stays chained', (t) => {
  const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:2525'), { code: 'ECONNREFUSED' });
  const wrapped = new RetryableError(`sending mail to a@x.com failed: ${describeError(refused)}`, { cause: refused });
  t.is(wrapped.cause, refused);
  t.is(describeError(wrapped), 'sending mail to a@x.com failed: connect ECONNREFUSED 127.0.0.1:2525');
  const twice = new TerminalError(`welcome for 1001: ${describeError(wrapped)}`, { cause: wrapped });
  t.is(count(describeError(twice), 'connect ECONNREFUSED 127.0.0.1:2525'), 1, describeError(twice));
});

test('describeError: causes a wrapper did not quote follow, also below a quoted one, each part once', (t) => {
  const root = new Error('EACCES: permission denied, open \'/var/lib/pbxsync/state.json\'');
  const middle = new Error('cannot write the state', { cause: root });
  t.is(describeError(new Error('run failed', { cause: middle })), "run failed: cannot write the state: EACCES: permission denied, open '/var/lib/pbxsync/state.json'");
  // Quotes the middle one only: the root still follows.
  t.is(describeError(new Error('run failed: cannot write the state', { cause: middle })), "run failed: cannot write the state: EACCES: permission denied, open '/var/lib/pbxsync/state.json'");
  // A library message that carries the server's reply twice (nodemailer's greeting error) adds nothing twice.
  const greeting = new Error('Invalid greeting. response=421 Busy: 421 Busy');
  t.is(describeError(new RetryableError('sending mail failed: server replied 421: Invalid greeting. response=421 Busy', { cause: greeting })), 'sending mail failed: server replied 421: Invalid greeting. response=421 Busy');
  t.is(describeError(new Error('plain')), 'plain');
  t.is(describeError('a string'), 'a string');
});
