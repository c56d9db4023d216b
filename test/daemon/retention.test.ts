import test from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import { runDaemon } from '../../src/daemon/run.js';
import { silentLogger } from '../../src/log.js';
import { makeWorkspace, person, threeCxCsv, waitFor } from '../helpers/workspace.js';

const DAY_MS = 86_400_000;

test('daemon: csv.keepDays applies at the start and before each dropped file; the file applied last always stays', async (t) => {
  const ws = await makeWorkspace();
  await fs.writeFile(ws.config, (await fs.readFile(ws.config, 'utf8')).replace('      stableMs: 300\n', '      stableMs: 300\n      keepDays: 30\n'));
  const processed = path.join(ws.inbox, 'processed');
  await fs.mkdir(processed, { recursive: true });
  for (const name of ['monday.csv', 'monday.csv.report.json', 'tuesday.csv', 'tuesday.csv.report.json']) {
    await fs.writeFile(path.join(processed, name), 'x');
    // Distinct ctimes: tuesday.csv is the file applied last.
    await new Promise((r) => setTimeout(r, 20));
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
  t.deepEqual(await left(), ['tuesday.csv', 'tuesday.csv.report.json'], 'monday went at the start');

  const drop = async (name: string, number: number) => {
    await fs.writeFile(path.join(ws.inbox, `.${name}.part`), threeCxCsv([person(number, 'Anna', `Smith${number}`)]));
    await fs.rename(path.join(ws.inbox, `.${name}.part`), path.join(ws.inbox, name));
    await waitFor(`${name} in processed/`, async () => (await left()).includes(`${name}.report.json`), 30_000);
  };
  await drop('wednesday.csv', 1001);
  t.deepEqual(await left(), ['tuesday.csv', 'tuesday.csv.report.json', 'wednesday.csv', 'wednesday.csv.report.json'], 'tuesday was still the newest when wednesday came');
  await drop('thursday.csv', 1002);
  t.deepEqual(await left(), ['thursday.csv', 'thursday.csv.report.json', 'wednesday.csv', 'wednesday.csv.report.json']);
});

