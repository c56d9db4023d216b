import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { LockedError } from '../../src/errors/index.js';
import { LOCK_NAME, acquireLock } from '../../src/state/lock.js';

async function dir(): Promise<string> {
  return mkdtemp(path.join(tmpdir(), 'pbxsync-lock-'));
}

test('lock: a second holder is refused until the first releases', async (t) => {
  const d = await dir();
  const release = await acquireLock(d);
  const err = await t.throwsAsync(acquireLock(d), { instanceOf: LockedError });
  t.is(err?.message, `another pbxsync process is applying (lock ${path.join(d, LOCK_NAME)})`);
  await release();
  const again = await acquireLock(d);
  await again();
  t.pass();
});

test('lock: a lock left by a dead process (kill -9) is taken over at once', async (t) => {
  const d = await dir();
  const child = spawn(process.execPath, ['-e', '0']);
  const pid = child.pid as number;
  await new Promise((r) => child.on('exit', r));
  // What a killed owner leaves behind: the lock directory with its pid, recently refreshed.
  await mkdir(path.join(d, LOCK_NAME));
  await writeFile(path.join(d, LOCK_NAME, 'pid'), String(pid));
  const release = await acquireLock(d);
  await release();
  t.pass();
});

test('lock: a lock held by a live process without a readable pid is respected', async (t) => {
  const d = await dir();
  await mkdir(path.join(d, LOCK_NAME));
  await writeFile(path.join(d, LOCK_NAME, 'pid'), String(process.ppid));
  await t.throwsAsync(acquireLock(d), { instanceOf: LockedError });
});

test('lock: a stale lock (not refreshed) is taken over after the stale period', async (t) => {
  const d = await dir();
  await mkdir(path.join(d, LOCK_NAME));
  const minuteAgo = new Date(Date.now() - 60_000);
  await utimes(path.join(d, LOCK_NAME), minuteAgo, minuteAgo);
  const release = await acquireLock(d, { staleMs: 10_000 });
  await release();
  t.pass();
});

test('a held lock survives its refreshes (the pid file written into it does not look like a theft)', async (t) => {
  const d = await dir();
  let compromised: Error | undefined;
  const release = await acquireLock(d, { staleMs: 2000, onCompromised: (e) => (compromised = e) });
  await new Promise((r) => setTimeout(r, 2600)); // more than one refresh period (stale / 2)
  t.is(compromised, undefined);
  await release();
});
