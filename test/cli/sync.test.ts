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

test('sync --full on a CSV source re-applies the file applied last and corrects drift made by hand; a plain sync reads nothing', async (t) => {
  const ws = await makeWorkspace();
  const processed = path.join(ws.inbox, 'processed');
  await fs.mkdir(processed, { recursive: true });
  await fs.writeFile(path.join(processed, 'old.csv'), threeCxCsv([person(1001, 'Old', 'File')]));
  await new Promise((r) => setTimeout(r, 20));
  await fs.writeFile(path.join(processed, 'staff.csv'), threeCxCsv([person(1001, 'Anna', 'Smith'), person(1002, 'Bob', 'Stone')]));
  await fs.writeFile(path.join(processed, 'staff.csv.report.json'), '{}');

  const first = await ws.cli(['sync', '--full', '--json']);
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
