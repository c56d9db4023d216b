import test from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import { TerminalError } from '../../../src/errors/index.js';
import { storedUsers } from '../../helpers/store.js';
import { capturingLogger, collect, openTarget, parseEml, RecordingMailer, tempDir, userInput } from './helpers.js';

async function outboxFiles(dir: string): Promise<string[]> {
  return (await fs.readdir(path.join(dir, 'outbox')).catch(() => [] as string[])).sort();
}

async function storedCredentials(dir: string, extension: string): Promise<{ webPassword: string; vmPin: string }> {
  // Read from the file: credentials never come back through the Target API (except the PIN, for planning).
  const { webPassword, vmPin } = (await storedUsers(path.join(dir, 'pbx.json'))).find((u) => u.extension === extension)!.credentials;
  if (webPassword === null || vmPin === null) throw new Error(`extension ${extension} has no generated web password or PIN`);
  return { webPassword, vmPin };
}

test('creating a user with an e-mail writes a welcome .eml with the account details', async (t) => {
  const dir = await tempDir(t);
  const target = await openTarget(t, dir);
  const anna = await target.createUser(userInput({ email: 'Anna@X.com', sendWelcome: true }));
  t.deepEqual(await outboxFiles(dir), [], 'no mail before the user is durable');
  t.true(target.describeUser(anna.id)!.welcomePending);
  await target.commit();
  const files = await outboxFiles(dir);
  t.is(files.length, 1);
  t.regex(files[0], /^\d{8}T\d{9}Z-1001-[0-9a-f]{8}\.eml$/);
  await target.close();

  const mail = parseEml(await fs.readFile(path.join(dir, 'outbox', files[0]), 'utf8'));
  t.is(mail.headers.from, 'PBX <pbx@example.com>');
  t.is(mail.headers.to, 'Anna Smith <anna@x.com>');
  t.is(mail.headers.subject, 'Your phone system account: extension 1001');
  t.truthy(mail.headers['message-id']);
  t.truthy(mail.headers.date);
  const { webPassword, vmPin } = await storedCredentials(dir, '1001');
  t.is(anna.vmPin, vmPin);
  for (const line of ['Extension:      1001', 'Web client:     https://pbx.example.com', 'Login (e-mail): anna@x.com', `Password:       ${webPassword}`, `Voicemail PIN:  ${vmPin}`]) {
    t.true(mail.text.includes(line), line);
  }
  t.true(mail.html.includes(`<code>${webPassword}</code>`));
  t.false(/[^\r]\n/.test(mail.raw), 'CRLF line ends only');

  const again = await openTarget(t, dir);
  const view = again.describeUser(anna.id)!;
  t.truthy(view.welcomeSentAt);
  t.false(view.welcomePending);
});

test('no welcome without an e-mail, without sendWelcome, or with welcome mail switched off', async (t) => {
  const dir = await tempDir(t);
  const target = await openTarget(t, dir);
  await target.createUser(userInput({ extension: '1001', sendWelcome: true }));
  await target.createUser(userInput({ extension: '1002', email: 'b@x.com', sendWelcome: false }));
  await target.commit();
  t.deepEqual(await outboxFiles(dir), []);
  const off = await tempDir(t);
  const quiet = await openTarget(t, off, { mail: { welcome: false, alertsTo: [], from: 'pbx@example.com', outbox: path.join(off, 'outbox') } });
  await quiet.createUser(userInput({ extension: '1001', email: 'a@x.com', sendWelcome: true }));
  await quiet.commit();
  t.deepEqual(await outboxFiles(off), []);
});

test('sendWelcome re-sends the mail, and refuses a user without e-mail', async (t) => {
  const dir = await tempDir(t);
  const target = await openTarget(t, dir);
  const anna = await target.createUser(userInput({ extension: '1001', email: 'a@x.com', sendWelcome: true }));
  const bob = await target.createUser(userInput({ extension: '1002', firstName: 'Bob' }));
  await target.commit();
  t.is((await outboxFiles(dir)).length, 1);
  await target.sendWelcome(anna.id);
  const files = await outboxFiles(dir);
  t.is(files.length, 2);
  t.true(files.every((f) => f.includes('-1001-')));
  await t.throwsAsync(target.sendWelcome(bob.id), { instanceOf: TerminalError, message: /extension 1002: has no e-mail address/ });
  await t.throwsAsync(target.sendWelcome('nobody'), { instanceOf: TerminalError });
});

test('a failed welcome mail does not fail the create: warning without secrets, pending, retried by sendWelcome', async (t) => {
  const dir = await tempDir(t);
  const mailer = new RecordingMailer();
  const { logger, lines } = capturingLogger();
  const target = await openTarget(t, dir, { mailer, logger });
  mailer.failing = true;
  const anna = await target.createUser(userInput({ email: 'a@x.com', sendWelcome: true }));
  await target.commit();
  t.true(target.describeUser(anna.id)!.welcomePending);
  t.is(target.describeUser(anna.id)!.welcomeSentAt, null);
  const warning = lines.find((l) => l.includes('welcome e-mail not sent'));
  t.truthy(warning);
  t.true(warning!.includes('"extension":"1001"'));
  t.true(warning!.includes('ECONNREFUSED'));
  await target.commit();
  const { webPassword, vmPin } = await storedCredentials(dir, '1001');
  for (const line of lines) {
    t.false(line.includes(webPassword));
    t.false(line.includes(vmPin));
  }

  await t.throwsAsync(target.sendWelcome(anna.id), { message: /ECONNREFUSED/ });
  t.true(target.describeUser(anna.id)!.welcomePending);
  mailer.failing = false;
  await target.sendWelcome(anna.id);
  t.false(target.describeUser(anna.id)!.welcomePending);
  t.truthy(target.describeUser(anna.id)!.welcomeSentAt);
  t.is(mailer.sent.length, 1);
  t.true(mailer.sent[0].text.includes(webPassword));
  // The welcome state is part of the store.
  await target.close();
  const again = await openTarget(t, dir);
  t.false(again.describeUser(anna.id)!.welcomePending);
  t.is((await collect(again.listUsers())).length, 1);
});

test('a welcome still due when a session ended goes out at the next session’s first commit, with the stored credentials', async (t) => {
  const dir = await tempDir(t);
  const down = new RecordingMailer();
  down.failing = true;
  const first = await openTarget(t, dir, { mailer: down });
  const anna = await first.createUser(userInput({ email: 'a@x.com', sendWelcome: true }));
  await first.close();
  t.is(down.sent.length, 0);

  const up = new RecordingMailer();
  const second = await openTarget(t, dir, { mailer: up });
  t.true(second.describeUser(anna.id)!.welcomePending);
  await second.commit();
  t.is(up.sent.length, 1);
  const { webPassword } = await storedCredentials(dir, '1001');
  t.true(up.sent[0]!.text.includes(webPassword), 'the mail carries the credentials the store holds');
  t.false(second.describeUser(anna.id)!.welcomePending);
  // Sent once: a later session has nothing left to send.
  await second.close();
  const third = await openTarget(t, dir, { mailer: up });
  await third.commit();
  t.is(up.sent.length, 1);
});

test('after three failed welcome mails in a row the rest wait for the next session (one warning, not one per user)', async (t) => {
  const dir = await tempDir(t);
  const mailer = new RecordingMailer();
  mailer.failing = true;
  const { logger, lines } = capturingLogger();
  const target = await openTarget(t, dir, { mailer, logger });
  for (let i = 0; i < 20; i++) await target.createUser(userInput({ extension: String(1001 + i), email: `u${i}@x.com`, sendWelcome: true }));
  await target.commit();
  t.true(mailer.attempts >= 3 && mailer.attempts <= 3 + 3, `${mailer.attempts} attempts (lanes in flight finish)`);
  t.is(lines.filter((l) => l.includes('welcome e-mails paused')).length, 1);
  await target.close();

  mailer.failing = false;
  const again = await openTarget(t, dir, { mailer });
  await again.commit();
  t.is(mailer.sent.length, 20);
  t.true((await collect(again.listUsers())).every((u) => !again.describeUser(u.id)!.welcomePending));
});
