import test from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import { createEngine } from '../../src/engine/engine.js';
import { silentLogger } from '../../src/log.js';
import { makeWorkspace, person, threeCxCsv } from '../helpers/workspace.js';

function summary(stdout: string): Record<string, number> {
  return JSON.parse(stdout.trim().split('\n').pop()!).summary;
}

test('sync --full on a CSV source re-applies the input applied last and corrects drift made by hand; a plain sync reads nothing', async (t) => {
  const ws = await makeWorkspace();
  // From before pbxsync recorded what it applied: files in processed/ are no record of it, so nothing is read.
  const processed = path.join(ws.inbox, 'processed');
  await fs.mkdir(processed, { recursive: true });
  await fs.writeFile(path.join(processed, 'old.csv'), threeCxCsv([person(1001, 'Old', 'File')]));
  const before = await ws.cli(['sync', '--full', '--json']);
  t.is(before.code, 0, before.stderr);
  t.is(summary(before.stdout).create, 0);
  t.regex(before.stderr, /no input recorded as applied by this source/);

  const first = await ws.cli(['import', await ws.write('staff.csv', threeCxCsv([person(1001, 'Anna', 'Smith'), person(1002, 'Bob', 'Stone')])), '--json']);
  t.is(first.code, 0, first.stderr);
  t.is(summary(first.stdout).create, 2);

  // Someone renames a managed user by hand in the PBX.
  const engine = await createEngine(await loadConfig(ws.config), { logger: silentLogger() });
  const target = await engine.openTarget();
  let anna = '';
  for await (const u of target.listUsers()) if (u.extension === '1001') anna = u.id;
  await target.updateUser(anna, { firstName: 'Hacked' });
  await target.commit();
  await target.close();
  await engine.close();

  const poll = await ws.cli(['sync', '--json']);
  t.is(poll.code, 0, poll.stderr);
  t.deepEqual(summary(poll.stdout), { create: 0, update: 0, disable: 0, enable: 0, delete: 0, adopt: 0, unchanged: 0, conflicts: 0, errors: 0 });

  const full = await ws.cli(['sync', '--full', '--json']);
  t.is(full.code, 0, full.stderr);
  t.is(summary(full.stdout).update, 1);
  const users = JSON.parse((await ws.cli(['export', '--format', 'json'])).stdout) as Array<{ extension: string; firstName: string }>;
  t.is(users.find((u) => u.extension === '1001')!.firstName, 'Anna');
});

test('plan and sync say so when files wait in the drop folder (which they do not read), in text and in --json; import does not', async (t) => {
  const ws = await makeWorkspace();
  const quiet = await ws.cli(['plan', '--json']);
  t.deepEqual(JSON.parse(quiet.stdout).notes, [], 'nothing waiting, nothing said');

  await fs.writeFile(path.join(ws.inbox, 'a.csv'), threeCxCsv([person(1001, 'Anna', 'Smith')]));
  // What the daemon would not take either: a copy in progress, a dotfile, a subfolder's file.
  await fs.writeFile(path.join(ws.inbox, 'b.csv.part'), threeCxCsv([person(1002, 'Bob', 'Stone')]));
  await fs.writeFile(path.join(ws.inbox, '.c.csv'), threeCxCsv([person(1003, 'Cy', 'Doe')]));
  await fs.mkdir(path.join(ws.inbox, 'processed'));
  await fs.writeFile(path.join(ws.inbox, 'processed', 'old.csv'), threeCxCsv([person(1004, 'Di', 'Old')]));
  const one = '1 file waiting in inbox/ (a.csv) is not read by plan or sync: the daemon imports it, or run: pbxsync import inbox/a.csv';

  const plan = await ws.cli(['plan']);
  t.is(plan.code, 0, plan.stderr);
  t.regex(plan.stdout, /^Plan \S+: 0 to create/);
  t.true(plan.stdout.includes(`\n# ${one}\n`), plan.stdout);
  const planJson = JSON.parse((await ws.cli(['plan', '--json'])).stdout) as { summary: Record<string, number>; notes: string[] };
  t.deepEqual(planJson.notes, [one]);
  t.is(planJson.summary.create, 0, 'the summary is unchanged by the note');

  await fs.writeFile(path.join(ws.inbox, 'b.csv'), threeCxCsv([person(1002, 'Bob', 'Stone')]));
  const two = '2 files waiting in inbox/ (a.csv, b.csv) are not read by plan or sync: the daemon imports them, or run: pbxsync import FILE';
  for (const args of [['sync'], ['sync', '--full'], ['sync', '--dry-run']]) {
    const r = await ws.cli([...args, '--json']);
    t.is(r.code, 0, r.stderr);
    t.deepEqual(JSON.parse(r.stdout).notes, [two], args.join(' '));
  }
  t.regex((await ws.cli(['sync'])).stdout, /^# 2 files waiting in inbox\/ \(a\.csv, b\.csv\) are not read/m);

  const imported = await ws.cli(['import', path.join(ws.inbox, 'a.csv'), '--json']);
  t.is(imported.code, 0, imported.stderr);
  t.deepEqual(JSON.parse(imported.stdout).notes, [], 'import reads the file it names');
});

test('plan counts a file a stopped daemon left in the drop folder\'s staging folder as waiting (the daemon takes it first at its next start)', async (t) => {
  const ws = await makeWorkspace();
  const slot = path.join(ws.inbox, '.pbxsync-processing', '20261205-120000-000001-4242');
  await fs.mkdir(slot, { recursive: true });
  await fs.writeFile(path.join(slot, 'staff.csv'), threeCxCsv([person(1001, 'Anna', 'Smith')]));
  const plan = JSON.parse((await ws.cli(['plan', '--json'])).stdout) as { notes: string[] };
  t.deepEqual(plan.notes, [
    '1 file waiting in inbox/ (staff.csv) is not read by plan or sync: the daemon imports it, or run: pbxsync import inbox/.pbxsync-processing/20261205-120000-000001-4242/staff.csv',
  ]);
});
