import test from 'ava';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { StorageError, isRetryable } from '../../src/errors/index.js';
import { ensureStateFolder, stateFolderError } from '../../src/state/folder.js';
import { acquireDaemonLock, acquireLock } from '../../src/state/lock.js';
import { StateStore } from '../../src/state/store.js';

async function tempDir(t: { teardown: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'pbxsync-folder-'));
  t.teardown(async () => {
    await chmod(dir, 0o700).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });
  return dir;
}

test('ensureStateFolder creates a missing state folder, parents too', async (t) => {
  const dir = path.join(await tempDir(t), 'var', 'pbxsync');
  await ensureStateFolder(dir);
  t.true((await stat(dir)).isDirectory());
  await ensureStateFolder(dir);
  t.pass('an existing folder is fine');
});

test('a state folder that is a file: a StorageError naming the folder and what to fix, from every way in (store, apply lock, daemon lock); the file is left alone', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'statefile');
  await writeFile(file, 'mine');
  for (const open of [() => ensureStateFolder(file), () => StateStore.open(file), () => acquireLock(file), () => acquireDaemonLock(file)]) {
    const err = await t.throwsAsync(open(), { instanceOf: StorageError });
    t.is(
      err!.message,
      `state folder ${file} is not a folder (it is a file): point stateDir in the configuration at a folder, or move ${file} out of the way`,
    );
    t.is(err!.folder, file);
    t.is((err!.cause as NodeJS.ErrnoException).code, 'EEXIST');
    t.true(isRetryable(err), 'fixed by the admin, the daemon tries again');
  }
  t.is(await readFile(file, 'utf8'), 'mine');
});

test('a file on the way to the state folder (ENOTDIR) is named', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'data');
  await writeFile(file, '');
  const stateDir = path.join(file, 'pbxsync');
  const err = await t.throwsAsync(StateStore.open(stateDir), { instanceOf: StorageError });
  t.is(err!.message, `state folder ${stateDir} is not a folder (${file} on its path is a file): point stateDir in the configuration at a folder, or move ${file} out of the way`);
});

// The error mkdir raises as a user without write access (made here: the tests may run as root, who has it).
test('stateFolderError: a state folder that may not be created (EACCES from mkdir) says so and what to do; errors that are not the machine\'s pass', async (t) => {
  const stateDir = path.join(tmpdir(), 'pbxsync-nowhere', 'state');
  const denied = Object.assign(new Error(`EACCES: permission denied, mkdir '${stateDir}'`), { code: 'EACCES', path: stateDir });
  const err = await stateFolderError(denied, stateDir);
  t.true(err instanceof StorageError);
  t.is(err!.message, `state folder ${stateDir} cannot be created (EACCES): let the user pbxsync runs as create and write it, or point stateDir at a folder it may write`);
  t.is(err!.folder, stateDir);
  t.is(err!.cause, denied);
  t.is(await stateFolderError(new SyntaxError('Unexpected token } in JSON'), stateDir), undefined);
});
