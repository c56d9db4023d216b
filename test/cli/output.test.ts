import test from 'ava';
import { spawn } from 'node:child_process';
import { CLI, makeWorkspace, person, threeCxCsv } from '../helpers/workspace.js';
import { YEALINK, makeInstall, startFake } from '../targets/threecx/e2e-helpers.js';

const BAR = /[\u2588\u2591]/; // the progress bar's full and empty block characters

/** Runs the CLI inside a pseudo-terminal (util-linux `script`), as an admin at a console would. */
function inTerminal(args: string[], cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const command = [process.execPath, CLI, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    const child = spawn('script', ['-qec', command, '/dev/null'], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', () => resolve(out));
  });
}

test('a long import shows a progress bar on a terminal, and never when piped or with --json', async (t) => {
  const ws = await makeWorkspace();
  const rows = Array.from({ length: 3000 }, (_, i) => person(1000 + i, `F${i}`, `L${i}`));
  const file = await ws.write('many.csv', threeCxCsv(rows));
  const dry = ['--config', ws.config, 'import', file, '--dry-run'];

  const piped = await ws.cli(['import', file, '--dry-run']);
  t.is(piped.code, 0, piped.stderr);
  t.notRegex(piped.stdout + piped.stderr, BAR);

  const tty = await inTerminal(['--config', ws.config, 'import', file], ws.dir);
  t.regex(tty, /read \d+ records/, 'the read counter is drawn on a terminal');
  t.regex(tty, BAR, 'the apply progress bar is drawn on a terminal');
  t.regex(tty, /3000 created/);

  const json = await inTerminal([...dry, '--json'], ws.dir);
  t.notRegex(json, BAR, 'no progress bar with --json');
});

test('text output names each rejected row once, and a held plan says why once and how to approve it', async (t) => {
  const ws = await makeWorkspace();
  const bad = await ws.write(
    'bad.csv',
    threeCxCsv([person(911, 'Nine', 'Eleven'), person(1001, 'Anna', 'Smith', { EmailAddress: 'not-an-email' }), person(1002, 'Bob', 'Stone')]),
  );
  const partial = await ws.cli(['import', bad]);
  t.is(partial.code, 4, partial.stderr);
  t.is(partial.stdout.split('\n').filter((l) => l.includes('emergency number')).length, 1, partial.stdout);
  t.is(partial.stdout.split('\n').filter((l) => l.includes('not-an-email')).length, 1, partial.stdout);

  const snapshots = await makeWorkspace({ mode: 'snapshot' });
  const everyone = Array.from({ length: 20 }, (_, i) => person(1100 + i, `F${i}`, `L${i}`));
  t.is((await snapshots.cli(['import', await snapshots.write('all.csv', threeCxCsv(everyone))])).code, 0);
  const held = await snapshots.cli(['import', await snapshots.write('few.csv', threeCxCsv(everyone.slice(0, 5)))]);
  t.is(held.code, 3, held.stderr);
  t.is(held.stdout.split('\n').filter((l) => l.startsWith('HELD')).length, 1, held.stdout);
  t.regex(held.stdout, /^review it, then approve with: pbxsync apply \S+/m);
});

test('text output lists the failed operations in line order, not in apply\'s (updates before creates); --json keeps its counts', async (t) => {
  // The 3CX fake refuses an unknown phone template when the write is made: operations that fail at apply, which
  // the embedded store never lets through the planner.
  const fake = await startFake();
  t.teardown(() => fake.close());
  const install = await makeInstall(fake);
  t.is((await install.cli(['import', await install.write('first.csv', threeCxCsv([person(1001, 'Anna', 'Smith')]))])).code, 0);

  const unknown = { MAC: '', Template: 'nosuch.ph.xml', Model: YEALINK.Model };
  const file = await install.write(
    'second.csv',
    threeCxCsv([person(1002, 'Bob', 'Stone', { ...unknown, MAC: '805ec0000002' }), person(1001, 'Anna', 'Smith', { ...unknown, MAC: '805ec0000001' })]),
  );
  const json = await install.importJson(file);
  t.is(json.code, 4, json.stdout + json.stderr);
  t.like(json.json.summary, { create: 0, update: 0, errors: 2 });
  t.is(json.json.failed?.length, 2);

  const again = await install.write('third.csv', threeCxCsv([person(1003, 'Cleo', 'Rae', { ...unknown, MAC: '805ec0000003' }), person(1001, 'Anna', 'Smith', { ...unknown, MAC: '805ec0000004' })]));
  const run = await install.cli(['import', again]);
  t.is(run.code, 4, run.stdout + run.stderr);
  const failed = run.stdout.split('\n').filter((l) => l.startsWith('✗'));
  t.deepEqual(failed.map((l) => /^✗ (\w+) (\d+)/.exec(l)?.slice(1).join(' ')), ['create 1003', 'update 1001'], run.stdout);
});
