import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { prunePlans } from '../../src/engine/plans.js';

const DAY_MS = 86_400_000;
const OLD = '20261001T020000Z-aaaaaa';
const HELD = '20261002T020000Z-bbbbbb';
const RECENT = '20261120T020000Z-cccccc';

/** A plans folder: an old plan with its input copy, an old plan still held, a recent one, an admin's note. */
async function plansFolder(t: ExecutionContext): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pbxsync-plans-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  const files: Array<[string, number]> = [
    [`${OLD}.json`, 40],
    [`${OLD}.hr.csv`, 40],
    [`${HELD}.json`, 40],
    [`${HELD}.hr.csv`, 40],
    [`${RECENT}.json`, 2],
    ['why-we-held-october.txt', 40],
  ];
  for (const [name, ageDays] of files) {
    const file = path.join(dir, name);
    await fs.writeFile(file, 'x');
    const at = new Date(Date.now() - ageDays * DAY_MS);
    await fs.utimes(file, at, at);
  }
  return dir;
}

test('prunePlans: plans no longer held go with their input copies once older than keepDays; held, recent and foreign files stay', async (t) => {
  const dir = await plansFolder(t);
  const deleted = await prunePlans({ dir, heldRunIds: new Set([HELD]), keepDays: 30 });
  t.deepEqual(deleted.map((f) => path.basename(f)), [`${OLD}.hr.csv`, `${OLD}.json`]);
  t.deepEqual((await fs.readdir(dir)).sort(), [`${HELD}.hr.csv`, `${HELD}.json`, `${RECENT}.json`, 'why-we-held-october.txt']);
});

test('prunePlans: the age counts against keepDays', async (t) => {
  const dir = await plansFolder(t);
  t.deepEqual(await prunePlans({ dir, heldRunIds: new Set(), keepDays: 45 }), []);
  const deleted = await prunePlans({ dir, heldRunIds: new Set(), keepDays: 1 });
  t.deepEqual(deleted.map((f) => path.basename(f)), [`${OLD}.hr.csv`, `${OLD}.json`, `${HELD}.hr.csv`, `${HELD}.json`, `${RECENT}.json`]);
});

test('prunePlans: no plans folder yet is nothing to do', async (t) => {
  t.deepEqual(await prunePlans({ dir: path.join(os.tmpdir(), 'pbxsync-no-such-plans-folder'), heldRunIds: new Set(), keepDays: 30 }), []);
});
