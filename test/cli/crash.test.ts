import test from 'ava';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { journalLines, slowSmtp, smtpMailConfig } from '../helpers/smtp.js';
import { storedUsers } from '../helpers/store.js';
import { CLI, makeWorkspace, person, threeCxCsv, waitFor } from '../helpers/workspace.js';

test('kill -9 in the middle of applying a 1,000-user file, then a restart: the store converges, no user twice, nothing lost', async (t) => {
  const smtp = await slowSmtp(8);
  t.teardown(() => smtp.close());
  const ws = await makeWorkspace({
    mail: smtpMailConfig(smtp.port),
    apply: `apply:
  concurrency: 4
  retries: 1
  checkpointEvery: 25`,
  });
  const rows = Array.from({ length: 1000 }, (_, i) => person(1000 + i, `First${i}`, `Last${i}`));
  const file = await ws.write('big.csv', threeCxCsv(rows));
  const journal = path.join(ws.stateDir, 'journal.jsonl');

  const child = spawn(process.execPath, [CLI, '--config', ws.config, 'import', file], { stdio: 'ignore', cwd: ws.dir });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await waitFor('a third of the operations to be journaled as done', async () => {
    const lines = await journalLines(journal);
    return lines.filter((l) => l.phase === 'done').length >= 300;
  }, 60_000);
  child.kill('SIGKILL');
  const code = await exited;
  t.is(code, null, 'the process died by the signal, it did not finish first');

  const afterCrash = await journalLines(journal);
  const done = afterCrash.filter((l) => l.phase === 'done').length;
  t.true(done >= 300 && done < 1000, `killed mid-apply (${done} done)`);

  const rerun = await ws.cli(['import', file, '--json'], { timeoutMs: 120_000 });
  t.is(rerun.code, 0, rerun.stdout + rerun.stderr);

  const users = JSON.parse((await ws.cli(['export', '--format', 'json'])).stdout) as Array<{ extension: string; email: string; managedBy: unknown }>;
  t.is(users.length, 1000, 'nothing lost, nothing twice');
  t.is(new Set(users.map((u) => u.extension)).size, 1000);
  t.is(new Set(users.map((u) => u.email)).size, 1000);
  t.true(users.every((u) => u.managedBy !== null), 'every user is bound to its row');

  const again = await ws.cli(['import', file, '--json']);
  const summary = JSON.parse(again.stdout.trim().split('\n').pop()!).summary;
  t.is(summary.unchanged, 1000, 'converged: a third run changes nothing');

  // Welcome mails go out only once a user's creation is durable: every mail received, also those sent
  // just before the kill, carries the password the store holds for its recipient, and everyone got one.
  const stored = await storedUsers(path.join(ws.stateDir, 'pbx.json'));
  const passwordOf = new Map(stored.map((u) => [u.email!, u.credentials.webPassword!]));
  const mails = smtp.messages();
  const recipients = new Set<string>();
  for (const mail of mails) {
    const to = /^To: .*<([^>]+)>/im.exec(mail)?.[1] ?? /^To: (\S+@\S+)/im.exec(mail)?.[1];
    t.truthy(to, 'a To header');
    const password = /Password:\s+(\S+)/.exec(mail.replace(/=\r?\n/g, ''))?.[1];
    t.is(password, passwordOf.get(to!.toLowerCase()), `the mail to ${to} carries the stored password`);
    recipients.add(to!.toLowerCase());
  }
  t.is(recipients.size, 1000, 'every user got a welcome mail');
});

test('kill -9 while welcome mails go out, then a restart: every user gets one welcome mail; only the mails the server had at the kill may come twice, named in the log, with the same password', async (t) => {
  const smtp = await slowSmtp(5, { holdAfter: 30 });
  t.teardown(() => smtp.close());
  const ws = await makeWorkspace({
    mail: smtpMailConfig(smtp.port),
    // One checkpoint: every mail goes out from the same commit, as a big file's do.
    apply: `apply:
  checkpointEvery: 1000`,
  });
  const rows = Array.from({ length: 60 }, (_, i) => person(1000 + i, `First${i}`, `Last${i}`));
  const file = await ws.write('staff.csv', threeCxCsv(rows));

  const child = spawn(process.execPath, [CLI, '--config', ws.config, 'import', file], { stdio: 'ignore', cwd: ws.dir });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await waitFor('the mail server holding a mail', () => smtp.received() > 30, 60_000);
  child.kill('SIGKILL');
  t.is(await exited, null, 'killed while the mail server had mails');
  smtp.release();

  const rerun = await ws.cli(['import', file, '--json'], { timeoutMs: 120_000 });
  t.is(rerun.code, 0, rerun.stdout + rerun.stderr);
  const doubt = rerun.stderr
    .split('\n')
    .filter((l) => l.includes('were with the mail server when pbxsync stopped'))
    .flatMap((l) => JSON.parse(l).extensions as string[]);
  t.true(doubt.length >= 1 && doubt.length <= 4, `in doubt: the round in flight only (${doubt.join(', ')})`);

  const stored = await storedUsers(path.join(ws.stateDir, 'pbx.json'));
  t.is(stored.length, 60);
  t.true(stored.every((u) => !u.welcomePending && u.welcomeSendingAt === undefined), 'nothing due or in doubt any more');
  const byEmail = new Map(stored.map((u) => [u.email!, u]));
  const count = new Map<string, number>();
  for (const mail of smtp.messages()) {
    const to = (/^To: .*<([^>]+)>/im.exec(mail)?.[1] ?? '').toLowerCase();
    const password = /Password:\s+(\S+)/.exec(mail.replace(/=\r?\n/g, ''))?.[1];
    t.is(password, byEmail.get(to)?.credentials.webPassword ?? undefined, `the mail to ${to} carries the stored password`);
    count.set(to, (count.get(to) ?? 0) + 1);
  }
  t.is(count.size, 60, 'every user got a welcome mail');
  for (const [to, n] of count) {
    const extension = byEmail.get(to)!.extension;
    if (doubt.includes(extension)) t.true(n <= 2, `${extension}: in doubt, at most twice`);
    else t.is(n, 1, `${extension}: exactly one welcome mail`);
  }
});
