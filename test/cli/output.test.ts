import test from 'ava';
import { spawn } from 'node:child_process';
import { CLI, makeWorkspace, person, threeCxCsv } from '../helpers/workspace.js';

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
