import test from 'ava';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pruneMovedFiles } from '../../../connectors/csv/retention.js';
import { csvSettings, sleep, tempDir } from './helpers.js';

const DAY_MS = 86_400_000;

/** processed/ with an older and a newer export (each with its report), failed/ with one file and its report. */
async function folders(t: Parameters<typeof tempDir>[0], keepDays?: number) {
  const settings = { ...csvSettings(await tempDir(t)), keepDays };
  await mkdir(settings.processed, { recursive: true });
  await mkdir(settings.failed, { recursive: true });
  for (const name of ['monday.csv', 'monday.csv.report.json']) await writeFile(path.join(settings.processed, name), 'x');
  await writeFile(path.join(settings.failed, 'broken.csv'), 'x');
  await writeFile(path.join(settings.failed, 'broken.csv.report.csv'), 'x');
  await sleep(20);
  for (const name of ['tuesday.csv', 'tuesday.csv.report.json']) await writeFile(path.join(settings.processed, name), 'x');
  const left = async () => ({ processed: (await readdir(settings.processed)).sort(), failed: (await readdir(settings.failed)).sort() });
  return { settings, left };
}

test('pruneMovedFiles: past keepDays, inputs and reports go from processed/ and failed/, the newest input too (the nightly run reads its own copy)', async (t) => {
  const { settings, left } = await folders(t, 30);
  const deleted = await pruneMovedFiles(settings, Date.now() + 31 * DAY_MS);
  t.deepEqual(deleted.map((f) => path.relative(settings.folder, f)).sort(), [
    'failed/broken.csv',
    'failed/broken.csv.report.csv',
    'processed/monday.csv',
    'processed/monday.csv.report.json',
    'processed/tuesday.csv',
    'processed/tuesday.csv.report.json',
  ]);
  t.deepEqual(await left(), { processed: [], failed: [] });
});

test('pruneMovedFiles: files younger than keepDays stay', async (t) => {
  const { settings, left } = await folders(t, 30);
  t.deepEqual(await pruneMovedFiles(settings, Date.now() + 29 * DAY_MS), []);
  t.deepEqual(await left(), { processed: ['monday.csv', 'monday.csv.report.json', 'tuesday.csv', 'tuesday.csv.report.json'], failed: ['broken.csv', 'broken.csv.report.csv'] });
});

test('pruneMovedFiles: without keepDays everything is kept for ever', async (t) => {
  const { settings, left } = await folders(t, undefined);
  t.deepEqual(await pruneMovedFiles(settings, Date.now() + 3650 * DAY_MS), []);
  t.is((await left()).processed.length, 4);
});
