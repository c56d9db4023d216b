import test from 'ava';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createLogger, redact, registerSecret } from '../src/log.js';

test('redact masks registered secrets, longest first, and leaves short digit runs alone', (t) => {
  registerSecret('abcd-secret');
  registerSecret('abcd-secret-and-more');
  registerSecret('Zx9!pass');
  registerSecret('123456'); // a PIN-like value: not registered
  t.is(redact('x abcd-secret-and-more y'), 'x [redacted] y');
  t.is(redact('abcd-secret,Zx9!pass'), '[redacted],[redacted]');
  t.is(redact('call +14155123456'), 'call +14155123456');
  t.is(redact('nothing here'), 'nothing here');
});

test('redact stays linear with many registered secrets', (t) => {
  for (let i = 0; i < 50_000; i++) registerSecret(`Gen${i.toString(36)}Pw${i}`);
  const line = 'user created '.repeat(50) + 'Gen1Pw1 end';
  t.is(redact(line).endsWith('[redacted] end'), true);
});

test('redact finds every secret after the table grew, also secrets sharing their first four characters', (t) => {
  const many = Array.from({ length: 5_000 }, (_, i) => `Grow${i}x${(i * 7919).toString(36)}`);
  for (const s of many) registerSecret(s);
  // Registered twice: still one entry, still masked once.
  registerSecret(many[0]);
  for (const i of [0, 1, 1023, 2047, 4999]) t.is(redact(`a ${many[i]} b`), 'a [redacted] b', many[i]);
  // Same first four characters, so the same probe sequence; the longest match at a position wins.
  registerSecret('samepfx-1');
  registerSecret('samepfx-1-longer');
  registerSecret('samepfx-2');
  t.is(redact('samepfx-1-longer|samepfx-2|samepfx-1|samepfx-3'), '[redacted]|[redacted]|[redacted]|samepfx-3');
  t.is(redact('Grow'), 'Grow');
});

test('the log file survives rotation by copytruncate (config/pbxsync.logrotate): lines after it start the file', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pbxsync-log-'));
  const file = path.join(dir, 'pbxsync.log');
  const logger = createLogger({ file, silent: true, level: 'info' });
  const written = () => new Promise<void>((resolve) => logger.on('finish', () => resolve()));
  logger.info('before rotation', { n: 1 });
  logger.info('before rotation', { n: 2 });
  await waitForLines(file, 2);

  // What logrotate's copytruncate does: copy the file aside, then truncate it in place while it is open.
  await fs.copyFile(file, `${file}.1`);
  await fs.truncate(file, 0);
  logger.info('after rotation', { n: 3 });
  const done = written();
  logger.end();
  await done;

  const text = await fs.readFile(file, 'utf8');
  t.false(text.includes('\0'), 'no hole of NUL bytes where the old lines were (the file is appended to, not written at an offset)');
  t.deepEqual(text.trim().split('\n').map((l) => (JSON.parse(l) as { n: number }).n), [3]);
  t.deepEqual((await fs.readFile(`${file}.1`, 'utf8')).trim().split('\n').map((l) => (JSON.parse(l) as { n: number }).n), [1, 2]);
});

async function waitForLines(file: string, n: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const text = await fs.readFile(file, 'utf8').catch(() => '');
    if (text.split('\n').filter((l) => l.startsWith('{')).length >= n) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`${file} did not get ${n} lines`);
}
