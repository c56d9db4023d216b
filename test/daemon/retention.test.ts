import test from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import { pruneMovedFiles } from '../../connectors/csv/retention.js';
import { loadConfig } from '../../src/config/load.js';
import { runDaemon } from '../../src/daemon/run.js';
import { createEngine } from '../../src/engine/engine.js';
import { silentLogger } from '../../src/log.js';
import { makeWorkspace, person, threeCxCsv, waitFor, type Workspace } from '../helpers/workspace.js';

const DAY_MS = 86_400_000;

test('daemon: csv.keepDays applies at the start and before each dropped file, the newest file too; the nightly run still has its copy', async (t) => {
  const ws = await makeWorkspace();
  await fs.writeFile(ws.config, (await fs.readFile(ws.config, 'utf8')).replace('      stableMs: 300\n', '      stableMs: 300\n      keepDays: 30\n'));
  const processed = path.join(ws.inbox, 'processed');
  await fs.mkdir(processed, { recursive: true });
  for (const name of ['monday.csv', 'monday.csv.report.json', 'tuesday.csv', 'tuesday.csv.report.json']) {
    await fs.writeFile(path.join(processed, name), 'x');
  }
  const left = async () => (await fs.readdir(processed)).sort();

  // Every file moved so far is 31 days old by the daemon's clock.
  const config = await loadConfig(ws.config);
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  let ready!: () => void;
  const started = new Promise<void>((resolve) => (ready = resolve));
  const exited = runDaemon(config, { logger: silentLogger(), stopSignal: stopped, onReady: () => ready(), now: () => Date.now() + 31 * DAY_MS });
  t.teardown(async () => {
    stop();
    await exited;
  });
  await Promise.race([started, exited]);
  t.deepEqual(await left(), [], 'monday and tuesday went at the start');

  const drop = async (name: string, number: number) => {
    await fs.writeFile(path.join(ws.inbox, `.${name}.part`), threeCxCsv([person(number, 'Anna', `Smith${number}`)]));
    await fs.rename(path.join(ws.inbox, `.${name}.part`), path.join(ws.inbox, name));
    await waitFor(`${name} in processed/`, async () => (await left()).includes(`${name}.report.json`), 30_000);
  };
  await drop('wednesday.csv', 1001);
  t.deepEqual(await left(), ['wednesday.csv', 'wednesday.csv.report.json']);
  await drop('thursday.csv', 1002);
  t.deepEqual(await left(), ['thursday.csv', 'thursday.csv.report.json'], 'wednesday went before thursday was read');
  stop();
  t.is(await exited, 0);

  // thursday.csv goes too at the next pruning; then a managed user of it is changed by hand.
  t.is((await pruneMovedFiles(config.sources[0]!.csv!, Date.now() + 31 * DAY_MS)).length, 2);
  t.deepEqual(await left(), []);
  await renameByHand(ws, '1002', 'Hacked');

  const full = await ws.cli(['sync', '--full', '--json']);
  t.is(full.code, 0, full.stderr);
  t.is(JSON.parse(full.stdout.trim().split('\n').pop()!).summary.update, 1);
  t.is(await firstNameOf(ws, '1002'), 'Anna', 'the nightly run re-read its own copy of thursday.csv');
});

async function renameByHand(ws: Workspace, extension: string, firstName: string): Promise<void> {
  const engine = await createEngine(await loadConfig(ws.config), { logger: silentLogger() });
  const target = await engine.openTarget();
  for await (const u of target.listUsers()) if (u.extension === extension) await target.updateUser(u.id, { firstName });
  await target.commit();
  await target.close();
  await engine.close();
}

async function firstNameOf(ws: Workspace, extension: string): Promise<string | undefined> {
  const users = JSON.parse((await ws.cli(['export', '--format', 'json'])).stdout) as Array<{ extension: string; firstName: string }>;
  return users.find((u) => u.extension === extension)?.firstName;
}
