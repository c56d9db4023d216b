import test from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import { journalLines, slowSmtp, smtpMailConfig } from '../helpers/smtp.js';
import { storedUsers } from '../helpers/store.js';
import { makeWorkspace, person, spawnDaemon, threeCxCsv, waitFor } from '../helpers/workspace.js';

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
  const first = spawnDaemon(ws);
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

  const second = spawnDaemon(ws);
  t.teardown(() => second.child.kill('SIGKILL'));
  await waitFor('the file processed on the next start', async () => (await fs.readdir(path.join(ws.inbox, 'processed')).catch(() => [] as string[])).includes('staff.csv'), 90_000);
  second.child.kill('SIGTERM');
  t.is(await second.exited, 0);
  const users = JSON.parse((await ws.cli(['export', '--format', 'json'])).stdout) as Array<{ extension: string }>;
  t.is(users.length, 600);
  t.is(new Set(users.map((u) => u.extension)).size, 600);
});

/** Recipient of each received mail, lower-case, and the password it carries. */
function mailsByRecipient(messages: string[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const mail of messages) {
    const to = (/^To: .*<([^>]+)>/im.exec(mail)?.[1] ?? /^To: (\S+@\S+)/im.exec(mail)?.[1] ?? '').toLowerCase();
    const password = /Password:\s+(\S+)/.exec(mail.replace(/=\r?\n/g, ''))?.[1] ?? '';
    out.set(to, [...(out.get(to) ?? []), password]);
  }
  return out;
}

/** Every operation journaled as started also ended (done or failed), and no line is torn. */
async function everyStartEnded(journal: string): Promise<{ started: number; unfinished: string[]; torn: boolean }> {
  const lines = await journalLines(journal);
  const started = new Set(lines.filter((l) => l.phase === 'start').map((l) => l.opId));
  const ended = new Set(lines.filter((l) => l.phase === 'done' || l.phase === 'failed').map((l) => l.opId));
  return { started: started.size, unfinished: [...started].filter((id) => !ended.has(id)) as string[], torn: lines.some((l) => l.phase === 'torn') };
}

test('SIGTERM while welcome mails go to a slow mail server: no further mail is started, the rest stays for the next start, which sends each exactly once', async (t) => {
  const smtp = await slowSmtp(50);
  t.teardown(() => smtp.close());
  const ws = await makeWorkspace({
    mail: smtpMailConfig(smtp.port),
    apply: `apply:
  checkpointEvery: 20`,
  });
  const journal = path.join(ws.stateDir, 'journal.jsonl');
  const first = spawnDaemon(ws);
  t.teardown(() => first.child.kill('SIGKILL'));
  await waitFor('daemon start', () => first.logs().includes('pbxsync running'));
  const rows = Array.from({ length: 300 }, (_, i) => person(1000 + i, `First${i}`, `Last${i}`));
  await fs.writeFile(path.join(ws.inbox, 'staff.csv'), threeCxCsv(rows));

  await waitFor('welcome mails being sent', () => smtp.received() >= 8, 60_000);
  first.child.kill('SIGTERM');
  t.is(await first.exited, 0, first.logs());
  const receivedAtStop = smtp.received();

  const stored = await storedUsers(path.join(ws.stateDir, 'pbx.json'));
  t.true(stored.length > 0 && stored.length < 300, `stopped before the end of the file (${stored.length} created)`);
  const due = stored.filter((u) => u.welcomePending);
  t.true(due.length > 0, 'mails not started when the signal came stay due');
  t.is(receivedAtStop, stored.length - due.length, 'every mail the server got is recorded as sent, and only those');
  t.true(stored.every((u) => u.welcomeSendingAt === undefined), 'no mail left in doubt by a clean stop');
  const journaled = await everyStartEnded(journal);
  t.deepEqual(journaled.unfinished, [], 'every operation in flight finished and was journaled');
  t.false(journaled.torn);
  await fs.access(path.join(ws.inbox, 'staff.csv'));
  t.regex(first.logs(), /welcome e-mails not sent yet stay pending for the next start/);

  const second = spawnDaemon(ws);
  t.teardown(() => second.child.kill('SIGKILL'));
  await waitFor('the file processed on the next start', async () => (await fs.readdir(path.join(ws.inbox, 'processed')).catch(() => [] as string[])).includes('staff.csv'), 90_000);
  await waitFor('every welcome mail sent', () => mailsByRecipient(smtp.messages()).size === 300, 90_000);
  second.child.kill('SIGTERM');
  t.is(await second.exited, 0, second.logs());

  const users = await storedUsers(path.join(ws.stateDir, 'pbx.json'));
  t.is(users.length, 300);
  const passwordOf = new Map(users.map((u) => [u.email!, u.credentials.webPassword!]));
  for (const [to, passwords] of mailsByRecipient(smtp.messages())) {
    t.deepEqual(passwords, [passwordOf.get(to)], `${to}: exactly one mail, with the stored password`);
  }
  t.true(users.every((u) => !u.welcomePending && u.welcomeSentAt !== null));
});

test('a second SIGTERM while stopping is logged and the daemon still stops cleanly; a third exits at once with 1', async (t) => {
  // Each mail takes the server 3 s: the stop waits for the ones in flight, long enough for more signals.
  const smtp = await slowSmtp(3000);
  t.teardown(() => smtp.close());
  const ws = await makeWorkspace({ mail: smtpMailConfig(smtp.port) });
  const journal = path.join(ws.stateDir, 'journal.jsonl');
  const rows = Array.from({ length: 20 }, (_, i) => person(1000 + i, `First${i}`, `Last${i}`));

  const first = spawnDaemon(ws);
  t.teardown(() => first.child.kill('SIGKILL'));
  await waitFor('daemon start', () => first.logs().includes('pbxsync running'));
  await fs.writeFile(path.join(ws.inbox, 'a.csv'), threeCxCsv(rows.slice(0, 10)));
  await waitFor('a welcome mail with the server', () => smtp.received() >= 1, 60_000);
  first.child.kill('SIGTERM');
  await waitFor('stopping', () => first.logs().includes('"stopping"'));
  t.true(first.child.kill('SIGTERM'), 'still running when the second signal came');
  t.is(await first.exited, 0, first.logs());
  t.regex(first.logs(), /already stopping/);
  t.regex(first.logs(), /"stopped"/);
  t.deepEqual((await everyStartEnded(journal)).unfinished, []);

  const second = spawnDaemon(ws);
  t.teardown(() => second.child.kill('SIGKILL'));
  await waitFor('daemon start', () => second.logs().includes('pbxsync running'), 60_000);
  await fs.writeFile(path.join(ws.inbox, 'b.csv'), threeCxCsv(rows.slice(10)));
  const before = smtp.received();
  await waitFor('a welcome mail of the second file with the server', () => smtp.received() > before, 60_000);
  second.child.kill('SIGINT');
  await waitFor('stopping', () => second.logs().includes('"stopping"'));
  second.child.kill('SIGTERM');
  await waitFor('already stopping', () => second.logs().includes('already stopping'));
  t.true(second.child.kill('SIGTERM'), 'still running when the third signal came');
  t.is(await second.exited, 1, second.logs());
  t.regex(second.logs(), /third signal: exiting at once/);
});
