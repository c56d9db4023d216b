import test, { type ExecutionContext } from 'ava';
import { mkdir, open, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  dropFolderFiles,
  isCandidateFile,
  LeaveFileInPlace,
  moveWithReport,
  STAGING_FOLDER,
  watchDropFolder,
  type DropFolderWatcher,
  type FileOutcome,
} from '../../../connectors/csv/dropFolder.js';
import type { CsvReport } from '../../../connectors/csv/report.js';
import type { CsvSourceSettings } from '../../../src/config/types.js';
import { silentLogger } from '../../../src/log.js';
import { csvBytes, csvSettings, sleep, tempDir } from './helpers.js';

const candidateTable: Array<[string, boolean]> = [
  ['users.csv', true],
  ['USERS.CSV', true],
  ['export.txt', true],
  ['users.xlsx', false],
  ['.hidden.csv', false],
  ['.~lock.users.csv#', false],
  ['~$users.csv', false],
  ['users.csv.tmp', false],
  ['users.csv.part', false],
  ['users.csv.crdownload', false],
  ['csv', false],
  ['.csv', false],
];
for (const [name, expected] of candidateTable) {
  test(`isCandidateFile: ${name} → ${expected}`, (t) => {
    t.is(isCandidateFile(name, ['.csv', 'txt']), expected);
  });
}

const reportFor = (file: string, overrides: Partial<CsvReport> = {}): CsvReport => ({
  file,
  source: 'hr',
  startedAt: '2025-01-02T03:04:05.000Z',
  finishedAt: '2025-01-02T03:04:06.000Z',
  rows: 1,
  applied: 1,
  rejected: [],
  ...overrides,
});

interface Harness {
  settings: CsvSourceSettings;
  watcher: DropFolderWatcher;
  /** Files handed to onFile, with their content at that moment. */
  calls: Array<{ name: string; content: string }>;
  maxConcurrent: () => number;
}

/** Starts a watcher on a fresh folder; `decide` chooses each file's outcome (default: processed). */
async function harness(
  t: ExecutionContext,
  options: {
    settings?: Partial<CsvSourceSettings>;
    before?: (settings: CsvSourceSettings) => Promise<void>;
    decide?: (name: string, content: string) => Promise<FileOutcome['status']> | FileOutcome['status'];
    delayMs?: number;
  } = {},
): Promise<Harness> {
  const dir = await tempDir(t);
  const settings = csvSettings(dir, options.settings);
  await mkdir(settings.folder, { recursive: true });
  await options.before?.(settings);
  const calls: Harness['calls'] = [];
  let running = 0;
  let max = 0;
  const watcher = watchDropFolder({
    settings,
    logger: silentLogger(),
    source: 'hr',
    onFile: async (file) => {
      running++;
      max = Math.max(max, running);
      try {
        const content = await readFile(file, 'utf8');
        calls.push({ name: path.basename(file), content });
        if (options.delayMs) await sleep(options.delayMs);
        const status = options.decide ? await options.decide(path.basename(file), content) : 'processed';
        return { status, report: reportFor(file, { rows: content.split('\n').length - 2 }) };
      } finally {
        running--;
      }
    },
  });
  t.teardown(() => watcher.close());
  return { settings, watcher, calls, maxConcurrent: () => max };
}

const sample = (n = 1): string => {
  const lines = ['Number,FirstName'];
  for (let i = 0; i < n; i++) lines.push(`${1001 + i},Name${i}`);
  return csvBytes(lines).toString('utf8');
};

test('files already there at start are processed and moved to processed/ with a JSON report beside', async (t) => {
  const h = await harness(t, {
    before: async (s) => {
      await writeFile(path.join(s.folder, 'a.csv'), sample(2));
    },
  });
  await h.watcher.drain();
  t.deepEqual(
    h.calls.map((c) => c.name),
    ['a.csv'],
  );
  t.deepEqual(await readdir(h.settings.processed), ['a.csv', 'a.csv.report.json']);
  t.is(await readFile(path.join(h.settings.processed, 'a.csv'), 'utf8'), sample(2));
  const report = JSON.parse(await readFile(path.join(h.settings.processed, 'a.csv.report.json'), 'utf8'));
  t.is(report.file, path.join(h.settings.folder, 'a.csv'));
  t.is(report.rows, 2);
  t.false((await readdir(h.settings.folder)).includes('a.csv'));
});

test('a file written slowly in chunks is processed once, only when complete', async (t) => {
  const h = await harness(t, { settings: { stableMs: 400 } });
  const file = path.join(h.settings.folder, 'slow.csv');
  const text = sample(40);
  const handle = await open(file, 'w');
  // Twelve pieces, 100 ms apart: 1.1 s of writing, never quiet for the 400 ms that make a file complete.
  const pieces = 12;
  const size = Math.ceil(text.length / pieces);
  for (let i = 0; i < pieces; i++) {
    await handle.write(text.slice(i * size, (i + 1) * size));
    await sleep(100);
    t.is(h.calls.length, 0, `processed after piece ${i + 1}`);
  }
  await handle.close();
  await h.watcher.drain();
  t.is(h.calls.length, 1);
  t.is(h.calls[0].content, text);
});

test('a file renamed into the folder is processed', async (t) => {
  const h = await harness(t);
  const staging = path.join(path.dirname(h.settings.folder), 'staging.csv');
  await writeFile(staging, sample(3));
  await h.watcher.drain();
  t.is(h.calls.length, 0);
  await rename(staging, path.join(h.settings.folder, 'renamed.csv'));
  await h.watcher.drain();
  t.deepEqual(
    h.calls.map((c) => [c.name, c.content]),
    [['renamed.csv', sample(3)]],
  );
  t.true((await readdir(h.settings.processed)).includes('renamed.csv'));
});

test('lock files, temp files, dotfiles, other extensions and subfolders are left alone', async (t) => {
  const ignored = ['~$users.csv', 'users.csv.tmp', 'users.csv.part', 'dl.csv.crdownload', '.hidden.csv', 'users.xlsx'];
  const h = await harness(t, {
    before: async (s) => {
      for (const name of ignored) await writeFile(path.join(s.folder, name), sample());
      await mkdir(path.join(s.folder, 'archive'));
      await writeFile(path.join(s.folder, 'archive', 'old.csv'), sample());
    },
  });
  await writeFile(path.join(h.settings.folder, 'real.txt'), sample());
  await h.watcher.drain();
  t.deepEqual(
    h.calls.map((c) => c.name),
    ['real.txt'],
  );
  const left = (await readdir(h.settings.folder)).sort();
  t.deepEqual(left, [...ignored, 'archive', 'processed'].sort());
  t.deepEqual(await readdir(path.join(h.settings.folder, 'archive')), ['old.csv']);
});

test('dropFolderFiles: the files the watcher takes (candidates, regular files, not in subfolders), by name; none in a missing folder', async (t) => {
  const dir = await tempDir(t);
  const settings = csvSettings(dir);
  t.deepEqual(await dropFolderFiles(settings), []);
  await mkdir(path.join(settings.folder, 'archive'), { recursive: true });
  await mkdir(path.join(settings.folder, 'folder.csv'));
  await mkdir(settings.processed);
  await writeFile(path.join(settings.processed, 'done.csv'), sample());
  await writeFile(path.join(settings.folder, 'archive', 'old.csv'), sample());
  for (const name of ['~$users.csv', 'users.csv.tmp', 'users.csv.part', 'dl.csv.crdownload', '.hidden.csv', 'users.xlsx', 'b.csv', 'a.txt']) {
    await writeFile(path.join(settings.folder, name), sample());
  }
  t.deepEqual(await dropFolderFiles(settings), [path.join(settings.folder, 'a.txt'), path.join(settings.folder, 'b.csv')]);
});

test('files are processed one at a time, in the order they became complete', async (t) => {
  const h = await harness(t, { delayMs: 50, settings: { stableMs: 100 } });
  for (const name of ['c.csv', 'a.csv', 'b.csv']) {
    await writeFile(path.join(h.settings.folder, name), sample());
    await sleep(250);
  }
  await h.watcher.drain();
  t.deepEqual(
    h.calls.map((c) => c.name),
    ['c.csv', 'a.csv', 'b.csv'],
  );
  t.is(h.maxConcurrent(), 1);
});

test('a failed outcome goes to failed/ with the report (CSV format) beside it', async (t) => {
  const h = await harness(t, { settings: { report: 'csv' }, decide: () => 'failed' });
  await writeFile(path.join(h.settings.folder, 'bad.csv'), sample());
  await h.watcher.drain();
  t.deepEqual(await readdir(h.settings.failed), ['bad.csv', 'bad.csv.report.csv']);
  t.is(await readFile(path.join(h.settings.failed, 'bad.csv.report.csv'), 'utf8'), 'line,column,record,reason,kind\r\n');
});

test('when the callback throws, the file goes to failed/ with the error in its report', async (t) => {
  const h = await harness(t, {
    decide: () => {
      throw new Error('mapping file broken');
    },
  });
  await writeFile(path.join(h.settings.folder, 'x.csv'), sample());
  await h.watcher.drain();
  t.deepEqual(await readdir(h.settings.failed), ['x.csv', 'x.csv.report.json']);
  const report = JSON.parse(await readFile(path.join(h.settings.failed, 'x.csv.report.json'), 'utf8'));
  t.like(report, { file: path.join(h.settings.folder, 'x.csv'), source: 'hr', rows: 0, applied: 0, rejected: [], error: 'mapping file broken' });
});

test('LeaveFileInPlace leaves the file in the drop folder', async (t) => {
  const h = await harness(t, {
    decide: () => {
      throw new LeaveFileInPlace();
    },
  });
  await writeFile(path.join(h.settings.folder, 'later.csv'), sample());
  await h.watcher.drain();
  t.is(h.calls.length, 1);
  t.true((await readdir(h.settings.folder)).includes('later.csv'));
  t.deepEqual(await readdir(h.settings.folder).then((x) => x.filter((n) => n === 'failed' || n === 'processed')), []);
});

test('LeaveFileInPlace with retryInMs: the file is offered again after that long, not before (not even when it changes)', async (t) => {
  const offered: number[] = [];
  const h = await harness(t, {
    decide: () => {
      offered.push(Date.now());
      if (offered.length === 1) throw new LeaveFileInPlace('the lock is held', { retryInMs: 600 });
      return 'processed';
    },
  });
  const file = path.join(h.settings.folder, 'retry.csv');
  await writeFile(file, sample());
  await h.watcher.drain();
  t.is(offered.length, 1);
  t.true((await readdir(h.settings.folder)).includes('retry.csv'), 'left in place meanwhile');
  // A change while it waits raises events; the file still waits for its retry.
  await writeFile(file, sample(2));
  await sleep(250);
  t.is(offered.length, 1);
  for (let i = 0; i < 100 && !(await readdir(h.settings.processed).catch(() => [] as string[])).includes('retry.csv'); i++) await sleep(50);
  t.is(offered.length, 2);
  t.true(offered[1]! - offered[0]! >= 600, `offered again after ${offered[1]! - offered[0]!} ms`);
  t.true((await readdir(h.settings.processed)).includes('retry.csv'));
  t.is(h.calls[1]?.content, sample(2), 'the file as it is when retried');
});

test('without file-system events (a network share sends none), the folder listing alone finds files: those there at start and new ones', async (t) => {
  const dir = await tempDir(t);
  const settings = csvSettings(dir);
  await mkdir(settings.folder, { recursive: true });
  await writeFile(path.join(settings.folder, 'early.csv'), sample());
  const seen: string[] = [];
  const watcher = watchDropFolder({
    settings,
    logger: silentLogger(),
    fileEvents: false,
    rescanMs: 100,
    onFile: async (file) => {
      seen.push(path.basename(file));
      return { status: 'processed', report: reportFor(file) };
    },
  });
  t.teardown(() => watcher.close());
  const processed = async () => (await readdir(settings.processed).catch(() => [] as string[])).filter((n) => n.endsWith('.csv')).sort();
  for (let i = 0; i < 100 && (await processed()).length < 1; i++) await sleep(50);
  t.deepEqual(await processed(), ['early.csv']);
  await writeFile(path.join(settings.folder, 'late.csv'), sample(2));
  for (let i = 0; i < 100 && (await processed()).length < 2; i++) await sleep(50);
  t.deepEqual(await processed(), ['early.csv', 'late.csv']);
  t.deepEqual(seen, ['early.csv', 'late.csv'], 'each once');
});

test('a name already in processed/ gets a timestamp suffix; nothing is overwritten', async (t) => {
  const h = await harness(t, {
    before: async (s) => {
      await mkdir(s.processed, { recursive: true });
      await writeFile(path.join(s.processed, 'users.csv'), 'older file');
      await writeFile(path.join(s.processed, 'users.csv.report.json'), '{"older":true}');
    },
  });
  await writeFile(path.join(h.settings.folder, 'users.csv'), sample());
  await h.watcher.drain();
  const names = (await readdir(h.settings.processed)).sort();
  t.is(names.length, 4);
  t.is(await readFile(path.join(h.settings.processed, 'users.csv'), 'utf8'), 'older file');
  const moved = names.find((n) => /^users\.\d{8}-\d{6}\.csv$/.test(n));
  t.truthy(moved, names.join(', '));
  t.is(await readFile(path.join(h.settings.processed, moved!), 'utf8'), sample());
  t.true(names.includes(`${moved}.report.json`));
});

test('the same name dropped again after processing is processed again', async (t) => {
  const h = await harness(t);
  await writeFile(path.join(h.settings.folder, 'daily.csv'), sample(1));
  await h.watcher.drain();
  await writeFile(path.join(h.settings.folder, 'daily.csv'), sample(2));
  await h.watcher.drain();
  t.deepEqual(
    h.calls.map((c) => c.content),
    [sample(1), sample(2)],
  );
  t.is((await readdir(h.settings.processed)).length, 4);
});

test('drain() on an idle folder resolves at once; close() is idempotent', async (t) => {
  const h = await harness(t);
  await h.watcher.drain();
  t.is(h.calls.length, 0);
  await h.watcher.close();
  await h.watcher.close();
  await h.watcher.drain();
  t.pass();
});

test('moveWithReport: collisions get -2, -3 … and reports are written beside each', async (t) => {
  const dir = await tempDir(t);
  const settings = csvSettings(dir, { report: 'csv' });
  await mkdir(settings.folder, { recursive: true });
  const moved: string[] = [];
  for (let i = 0; i < 3; i++) {
    const file = path.join(settings.folder, 'u.csv');
    await writeFile(file, `v${i}`);
    const r = await moveWithReport(file, 'failed', reportFor(file, { rejected: [{ line: 2, kind: 'rejected', reason: 'bad' }] }), settings);
    t.is(r.reportPath, `${r.movedTo}.report.csv`);
    t.is(await readFile(r.movedTo, 'utf8'), `v${i}`);
    t.is(await readFile(r.reportPath, 'utf8'), 'line,column,record,reason,kind\r\n2,,,bad,rejected\r\n');
    moved.push(path.basename(r.movedTo));
  }
  t.is(moved[0], 'u.csv');
  t.regex(moved[1], /^u\.\d{8}-\d{6}\.csv$/);
  // Same second: the stamp is the same, so the third one counts on.
  t.true(moved[2] === moved[1].replace('.csv', '-2.csv') || /^u\.\d{8}-\d{6}\.csv$/.test(moved[2]));
  t.is(new Set(moved).size, 3);
  // Reports are written aside and renamed in: nothing but the files and their reports is left.
  t.deepEqual((await readdir(settings.failed)).sort(), moved.flatMap((m) => [m, `${m}.report.csv`]).sort());
});

/** Drops `text` as `name` the way an admin's script does: written under a temporary name, renamed in. */
async function renameIn(folder: string, name: string, text: string): Promise<void> {
  const part = path.join(folder, `.${name}.part`);
  await writeFile(part, text);
  await rename(part, path.join(folder, name));
}

/**
 * A `decide` whose first call takes `ms` and then ends as `first` says (the file in progress while a test drops
 * another); `taken` resolves when that first call starts. Later calls are processed at once.
 */
function slowFirstOffer(ms: number, first: () => Promise<FileOutcome['status']>) {
  let firstTaken!: () => void;
  const taken = new Promise<void>((resolve) => (firstTaken = resolve));
  let offered = 0;
  const decide = async (): Promise<FileOutcome['status']> => {
    if (++offered > 1) return 'processed';
    firstTaken();
    await sleep(ms);
    return first();
  };
  return { taken, decide };
}

const processedReport = async (settings: CsvSourceSettings, name: string) =>
  JSON.parse(await readFile(path.join(settings.processed, `${name}.report.json`), 'utf8')) as CsvReport;

test('a file dropped under the same name while the first is applied is a new drop: both applied in order, each moved with its own report', async (t) => {
  const { taken, decide } = slowFirstOffer(800, async () => 'processed');
  const h = await harness(t, { decide });
  await renameIn(h.settings.folder, 'users.csv', sample(1));
  await taken;
  // The first users.csv is being applied: the new one takes its name in the folder.
  await renameIn(h.settings.folder, 'users.csv', sample(3));
  await h.watcher.drain();

  t.deepEqual(
    h.calls.map((c) => [c.name, c.content]),
    [
      ['users.csv', sample(1)],
      ['users.csv', sample(3)],
    ],
  );
  const names = (await readdir(h.settings.processed)).sort();
  t.is(names.length, 4, names.join(', '));
  const second = names.find((n) => /^users\.\d{8}-\d{6}\.csv$/.test(n));
  t.truthy(second, names.join(', '));
  t.is(await readFile(path.join(h.settings.processed, 'users.csv'), 'utf8'), sample(1));
  t.is((await processedReport(h.settings, 'users.csv')).rows, 1);
  t.is(await readFile(path.join(h.settings.processed, second!), 'utf8'), sample(3));
  t.like(await processedReport(h.settings, second!), { rows: 3, file: path.join(h.settings.folder, 'users.csv') });
  t.deepEqual((await readdir(h.settings.folder)).sort(), ['processed'], 'nothing left behind, no staging folder');
});

test('files a stopped daemon left in the staging folder go first at the next start, before a newer file of the same name', async (t) => {
  const h = await harness(t, {
    before: async (s) => {
      const slot = path.join(s.folder, STAGING_FOLDER, '20250102-030405-000001-1');
      await mkdir(slot, { recursive: true });
      await writeFile(path.join(slot, 'users.csv'), sample(2));
      await writeFile(path.join(s.folder, 'users.csv'), sample(4));
      t.deepEqual(await dropFolderFiles(s), [path.join(slot, 'users.csv'), path.join(s.folder, 'users.csv')], 'both wait, the staged one first');
    },
  });
  await h.watcher.drain();
  t.deepEqual(
    h.calls.map((c) => c.content),
    [sample(2), sample(4)],
  );
  t.is(await readFile(path.join(h.settings.processed, 'users.csv'), 'utf8'), sample(2));
  t.like(await processedReport(h.settings, 'users.csv'), { rows: 2, file: path.join(h.settings.folder, 'users.csv') });
  t.deepEqual((await readdir(h.settings.folder)).sort(), ['processed']);
  t.deepEqual(await dropFolderFiles(h.settings), []);
});

test('a file left in place while a newer one took its name stays staged, is retried first, and the newer one follows', async (t) => {
  const { taken, decide } = slowFirstOffer(500, async () => {
    throw new LeaveFileInPlace('the lock is held', { retryInMs: 400 });
  });
  const h = await harness(t, { decide });
  await renameIn(h.settings.folder, 'users.csv', sample(1));
  await taken;
  await renameIn(h.settings.folder, 'users.csv', sample(3));
  for (let i = 0; i < 200 && (await readdir(h.settings.processed).catch(() => [] as string[])).length < 4; i++) await sleep(50);
  t.deepEqual(
    h.calls.map((c) => c.content),
    [sample(1), sample(1), sample(3)],
  );
  t.is(await readFile(path.join(h.settings.processed, 'users.csv'), 'utf8'), sample(1));
  const second = (await readdir(h.settings.processed)).find((n) => /^users\.\d{8}-\d{6}\.csv$/.test(n));
  t.is(await readFile(path.join(h.settings.processed, second!), 'utf8'), sample(3));
});
