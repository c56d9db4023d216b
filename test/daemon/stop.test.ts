import test from 'ava';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { journalLines, slowSmtp, smtpMailConfig } from '../helpers/smtp.js';
import { CLI, makeWorkspace, person, threeCxCsv, waitFor, type Workspace } from '../helpers/workspace.js';

function startDaemon(ws: Workspace) {
  const child = spawn(process.execPath, [CLI, '--config', ws.config, 'run'], { cwd: ws.dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let logs = '';
  child.stdout.on('data', (d) => (logs += d));
  child.stderr.on('data', (d) => (logs += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, exited, logs: () => logs };
}

test('SIGTERM in the middle of a dropped file: in-flight operations finish and are journaled, the file stays, the next start applies the rest', async (t) => {
  const smtp = await slowSmtp(10);
  t.teardown(() => smtp.close());
  const ws = await makeWorkspace({
    mail: smtpMailConfig(smtp.port),
    apply: `apply:
  concurrency: 2
  checkpointEvery: 20`,
  });
  const journal = path.join(ws.stateDir, 'journal.jsonl');
  const first = startDaemon(ws);
  t.teardown(() => first.child.kill('SIGKILL'));
  await waitFor('daemon start', () => first.logs().includes('pbxsync running'));
  const rows = Array.from({ length: 600 }, (_, i) => person(1000 + i, `First${i}`, `Last${i}`));
  await fs.writeFile(path.join(ws.inbox, 'staff.csv'), threeCxCsv(rows));

  await waitFor('some operations applied', async () => (await journalLines(journal)).filter((l) => l.phase === 'done').length >= 60, 60_000);
  first.child.kill('SIGTERM');
  t.is(await first.exited, 0, first.logs());

  const lines = await journalLines(journal);
  const started = new Set(lines.filter((l) => l.phase === 'start').map((l) => (l as { opId?: string }).opId));
  const ended = new Set(lines.filter((l) => l.phase === 'done' || l.phase === 'failed').map((l) => (l as { opId?: string }).opId));
  t.true(started.size > 0 && started.size < 600, `stopped part-way (${started.size} started)`);
  t.deepEqual([...started].filter((id) => !ended.has(id)), [], 'every operation in flight finished and was journaled');
  t.false(lines.some((l) => l.phase === 'torn'));
  await fs.access(path.join(ws.inbox, 'staff.csv'));
  t.deepEqual(await fs.readdir(path.join(ws.inbox, 'processed')).catch(() => []), [], 'not moved: it was not fully applied');

  const second = startDaemon(ws);
  t.teardown(() => second.child.kill('SIGKILL'));
  await waitFor('the file processed on the next start', async () => (await fs.readdir(path.join(ws.inbox, 'processed')).catch(() => [] as string[])).includes('staff.csv'), 90_000);
  second.child.kill('SIGTERM');
  t.is(await second.exited, 0);
  const users = JSON.parse((await ws.cli(['export', '--format', 'json'])).stdout) as Array<{ extension: string }>;
  t.is(users.length, 600);
  t.is(new Set(users.map((u) => u.extension)).size, 600);
});
