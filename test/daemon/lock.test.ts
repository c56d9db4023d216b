import test from 'ava';
import { makeWorkspace, person, runCli, spawnDaemon, threeCxCsv, waitFor } from '../helpers/workspace.js';

test('a second `pbxsync run` on the same state folder exits at once with 1, naming the folder and the running daemon; one-shot commands still work next to the daemon', async (t) => {
  const ws = await makeWorkspace();
  const first = spawnDaemon(ws);
  t.teardown(() => first.child.kill('SIGKILL'));
  await waitFor('daemon start', () => first.logs().includes('pbxsync running'));

  const second = await runCli(['--config', ws.config, 'run'], { cwd: ws.dir, timeoutMs: 30_000 });
  t.is(second.code, 1, second.stdout + second.stderr);
  t.regex(second.stderr, /another pbxsync daemon/);
  t.true(second.stderr.includes(`(pid ${first.child.pid})`), second.stderr);
  t.true(second.stderr.includes(ws.stateDir), second.stderr);
  t.false(second.stdout.includes('pbxsync running'), 'it never started watching the inbox');

  const file = await ws.write('one.csv', threeCxCsv([person(1001, 'Anna', 'Smith')]));
  const imported = await ws.cli(['import', file, '--json']);
  t.is(imported.code, 0, imported.stdout + imported.stderr);
  const plan = await ws.cli(['plan']);
  t.is(plan.code, 0, plan.stdout + plan.stderr);

  first.child.kill('SIGTERM');
  t.is(await first.exited, 0, first.logs());
  // Released on a clean stop: the next daemon starts.
  const third = spawnDaemon(ws);
  t.teardown(() => third.child.kill('SIGKILL'));
  await waitFor('the next daemon starts', () => third.logs().includes('pbxsync running'));
  third.child.kill('SIGTERM');
  t.is(await third.exited, 0, third.logs());
});

test('a daemon killed with -9 does not block the next start', async (t) => {
  const ws = await makeWorkspace();
  const first = spawnDaemon(ws);
  t.teardown(() => first.child.kill('SIGKILL'));
  await waitFor('daemon start', () => first.logs().includes('pbxsync running'));
  first.child.kill('SIGKILL');
  t.is(await first.exited, null);

  const next = spawnDaemon(ws);
  t.teardown(() => next.child.kill('SIGKILL'));
  await waitFor('the next daemon starts', () => next.logs().includes('pbxsync running') || next.child.exitCode !== null);
  t.true(next.logs().includes('pbxsync running'), next.logs());
  t.is(next.child.exitCode, null);
  next.child.kill('SIGTERM');
  t.is(await next.exited, 0, next.logs());
});
