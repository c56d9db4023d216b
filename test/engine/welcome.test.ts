import test from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import { closedPort, refusingSmtp, slowSmtp, smtpMailConfig } from '../helpers/smtp.js';
import { storedUsers } from '../helpers/store.js';
import { makeWorkspace, person, spawnDaemon, threeCxCsv, waitFor } from '../helpers/workspace.js';

test('the daemon sends the welcome mails left due at its start, without waiting for a run that writes', async (t) => {
  const down = await closedPort();
  const ws = await makeWorkspace({ mail: smtpMailConfig(down) });
  const file = await ws.write('staff.csv', threeCxCsv([person(1001, 'Anna', 'Smith'), person(1002, 'Bob', 'Stone'), person(1003, 'Cleo', 'Rae')]));
  const imported = await ws.cli(['import', file]);
  t.is(imported.code, 0, imported.stdout + imported.stderr);
  t.is((await storedUsers(path.join(ws.stateDir, 'pbx.json'))).filter((u) => u.welcomePending).length, 3, 'the mail server was down');

  const smtp = await slowSmtp(1);
  t.teardown(() => smtp.close());
  await fs.writeFile(ws.config, (await fs.readFile(ws.config, 'utf8')).replace(smtpMailConfig(down), smtpMailConfig(smtp.port)));
  const { child, exited, logs: output } = spawnDaemon(ws);
  t.teardown(() => child.kill('SIGKILL'));
  await waitFor('daemon start', () => output().includes('pbxsync running'));
  const logs = output();
  t.is(smtp.received(), 3, logs);
  child.kill('SIGTERM');
  t.is(await exited, 0, output());
  t.true((await storedUsers(path.join(ws.stateDir, 'pbx.json'))).every((u) => !u.welcomePending && u.welcomeSentAt !== null));
});

test('the daemon at start with a mail server that drops every connection: each due mail tried once, its warning names the cause once, the mails stay due', async (t) => {
  const down = await closedPort();
  const ws = await makeWorkspace({ mail: smtpMailConfig(down) });
  const file = await ws.write('staff.csv', threeCxCsv([person(1001, 'Anna', 'Smith'), person(1002, 'Bob', 'Stone'), person(1003, 'Cleo', 'Rae')]));
  t.is((await ws.cli(['import', file])).code, 0);

  const server = await refusingSmtp('drop');
  t.teardown(() => server.close());
  await fs.writeFile(ws.config, (await fs.readFile(ws.config, 'utf8')).replace(smtpMailConfig(down), smtpMailConfig(server.port)));
  const { child, exited, logs: output } = spawnDaemon(ws);
  t.teardown(() => child.kill('SIGKILL'));
  await waitFor('daemon start', () => output().includes('pbxsync running'));
  const logs = output();
  // Counted by the server: one connection per mail, not nodemailer's five requeues on top of each.
  t.is(server.connections(), 3, logs);
  const warnings = logs.split('\n').filter((l) => l.includes('"message":"welcome e-mail not sent'));
  t.is(warnings.length, 3, logs);
  for (const w of warnings) {
    const error = (JSON.parse(w) as { error: string }).error;
    t.is(error.split('after connection was closed').length - 1, 1, error);
  }
  child.kill('SIGTERM');
  t.is(await exited, 0, output());
  t.is((await storedUsers(path.join(ws.stateDir, 'pbx.json'))).filter((u) => u.welcomePending).length, 3);
});
