import test from 'ava';
import fs from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { SMTPServer } from 'smtp-server';
import type { SecretValue } from '../../src/config/types.js';
import { RetryableError, TerminalError } from '../../src/errors/index.js';
import { silentLogger } from '../../src/log.js';
import { createMailer, outboxFileName } from '../../src/mail/mailer.js';
import { escapeHtml, welcomeMessage } from '../../src/mail/welcome.js';
import { parseEml } from '../targets/embedded/helpers.js';

function secret(value: string): SecretValue {
  return { reveal: () => value, toString: () => '[redacted]', toJSON: () => '[redacted]' };
}

async function tempDir(): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), 'pbxsync-mail-'));
}

const anna = { extension: '1001', firstName: 'Anna', lastName: 'Müller', displayName: null, email: 'anna@x.com' };
const credentials = { webPassword: 'Abcdefgh23', vmPin: '583920' };

test('welcomeMessage carries extension, web client, login, password and PIN', (t) => {
  const m = welcomeMessage(anna, credentials, { from: 'pbx@example.com', webClientUrl: 'https://pbx.example.com' });
  t.is(m.from, 'pbx@example.com');
  t.is(m.to, '"Anna Müller" <anna@x.com>');
  t.is(m.subject, 'Your phone system account: extension 1001');
  t.is(m.extension, '1001');
  for (const value of ['1001', 'https://pbx.example.com', 'anna@x.com', 'Abcdefgh23', '583920']) {
    t.true(m.text.includes(value), value);
    t.true(m.html!.includes(value), value);
  }
});

test('welcomeMessage leaves out an unknown web client address and refuses a user without e-mail', (t) => {
  const m = welcomeMessage(anna, credentials, { from: 'pbx@example.com' });
  t.false(m.text.includes('Web client'));
  t.throws(() => welcomeMessage({ ...anna, email: null }, credentials, { from: 'pbx@example.com' }), { instanceOf: TerminalError });
});

test('names are escaped in the HTML part', (t) => {
  const m = welcomeMessage({ ...anna, firstName: '<b>Eve</b>' }, credentials, { from: 'pbx@example.com' });
  t.false(m.html!.includes('<b>Eve</b>'));
  t.true(m.html!.includes(escapeHtml('<b>Eve</b>')));
});

test('outbox file names sort by time and name the extension', (t) => {
  const name = outboxFileName('1001', new Date('2026-03-14T10:15:00.123Z'));
  t.regex(name, /^20260314T101500123Z-1001-[0-9a-f]{8}\.eml$/);
  t.regex(outboxFileName('../etc'), /-mail-[0-9a-f]{8}\.eml$/);
  t.regex(outboxFileName(undefined), /-mail-[0-9a-f]{8}\.eml$/);
});

test('without smtpUrl, mail becomes an RFC 5322 file in the outbox, written atomically, readable by its owner only', async (t) => {
  const dir = await tempDir();
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  const outbox = path.join(dir, 'nested', 'outbox');
  const mailer = createMailer({ welcome: true, alertsTo: [], from: 'PBX <pbx@example.com>', outbox }, silentLogger());
  t.is(mailer.kind, 'outbox');
  await mailer.send(welcomeMessage(anna, credentials, { from: 'PBX <pbx@example.com>', webClientUrl: 'https://pbx.example.com' }));
  await mailer.send({ to: 'ops@example.com', subject: 'Plain', text: 'hello' });
  const files = (await fs.readdir(outbox)).sort();
  t.is(files.length, 2);
  t.true(files.every((f) => f.endsWith('.eml') && !f.startsWith('.')));
  const welcome = files.find((f) => f.includes('-1001-'))!;
  t.is((await fs.stat(path.join(outbox, welcome))).mode & 0o777, 0o600);
  const mail = parseEml(await fs.readFile(path.join(outbox, welcome), 'utf8'));
  t.is(mail.headers['mime-version'], '1.0');
  t.is(mail.headers.from, 'PBX <pbx@example.com>');
  t.regex(mail.headers.to, /^=\?UTF-8\?Q\?Anna_M=C3=BCller\?= <anna@x\.com>$/);
  t.true(mail.text.includes('Hello Anna,'));
  t.true(mail.text.includes('Abcdefgh23'));
  const plain = parseEml(await fs.readFile(path.join(outbox, files.find((f) => f.includes('-mail-'))!), 'utf8'));
  t.is(plain.headers.from, 'PBX <pbx@example.com>', 'MailConfig.from when the message names none');
  await mailer.close();
});

test('an outbox that cannot be written is a RetryableError', async (t) => {
  const dir = await tempDir();
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  const blocker = path.join(dir, 'file');
  await fs.writeFile(blocker, 'not a folder');
  const mailer = createMailer({ welcome: true, alertsTo: [], from: 'pbx@example.com', outbox: path.join(blocker, 'outbox') }, silentLogger());
  await t.throwsAsync(mailer.send({ to: 'a@x.com', subject: 's', text: 't' }), { instanceOf: RetryableError });
});

interface Received {
  from: string;
  to: string[];
  user?: string;
  raw: string;
}

async function startSmtp(
  t: import('ava').ExecutionContext,
  options: { reject?: boolean; password?: string } = {},
): Promise<{ port: number; received: Received[]; refusedLogins: () => number }> {
  let refusedLogins = 0;
  const received: Received[] = [];
  const server = new SMTPServer({
    // Plain SMTP on loopback: no STARTTLS (smtp-server's built-in certificate would not verify).
    disabledCommands: ['STARTTLS'],
    allowInsecureAuth: true,
    authOptional: true,
    logger: false,
    onAuth(auth, _session, callback) {
      if (auth.username === 'pbx' && auth.password === (options.password ?? 's3cret')) return callback(null, { user: auth.username });
      refusedLogins++;
      return callback(new Error('Invalid username or password'));
    },
    onRcptTo(address, _session, callback) {
      if (options.reject) return callback(Object.assign(new Error('No such user here'), { responseCode: 550 }));
      return callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        received.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          user: session.user as string | undefined,
          raw: Buffer.concat(chunks).toString('utf8'),
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { port: (server.server.address() as AddressInfo).port, received, refusedLogins: () => refusedLogins };
}

test('with smtpUrl, the welcome mail travels over real SMTP (with AUTH) to the server', async (t) => {
  const { port, received } = await startSmtp(t);
  const mailer = createMailer(
    { welcome: true, alertsTo: [], from: 'PBX <pbx@example.com>', smtpUrl: secret(`smtp://pbx:s3cret@127.0.0.1:${port}`), outbox: '/nonexistent' },
    silentLogger(),
  );
  t.teardown(() => mailer.close());
  t.is(mailer.kind, 'smtp');
  await mailer.send(welcomeMessage(anna, credentials, { from: 'PBX <pbx@example.com>', webClientUrl: 'https://pbx.example.com' }));
  t.is(received.length, 1);
  t.is(received[0].from, 'pbx@example.com');
  t.deepEqual(received[0].to, ['anna@x.com']);
  t.is(received[0].user, 'pbx');
  const mail = parseEml(received[0].raw);
  t.is(mail.headers.subject, 'Your phone system account: extension 1001');
  for (const value of ['Extension:      1001', 'Login (e-mail): anna@x.com', 'Password:       Abcdefgh23', 'Voicemail PIN:  583920']) {
    t.true(mail.text.includes(value), value);
  }
});

test('a permanent SMTP refusal is a TerminalError, an unreachable server a RetryableError', async (t) => {
  const { port } = await startSmtp(t, { reject: true });
  const refusing = createMailer({ welcome: true, alertsTo: [], from: 'pbx@example.com', smtpUrl: secret(`smtp://127.0.0.1:${port}`), outbox: '/nonexistent' }, silentLogger());
  t.teardown(() => refusing.close());
  const err = await t.throwsAsync(refusing.send({ to: 'ghost@x.com', subject: 's', text: 't' }), { instanceOf: TerminalError });
  t.regex(err!.message, /^sending mail to ghost@x\.com failed: .*550/);

  // Port 1 on loopback: nobody listens, the connection is refused.
  const unreachable = createMailer(
    { welcome: true, alertsTo: [], from: 'pbx@example.com', smtpUrl: secret(`smtp://pbx:s3cret@127.0.0.1:1`), outbox: '/nonexistent' },
    silentLogger(),
  );
  t.teardown(() => unreachable.close());
  const down = await t.throwsAsync(unreachable.send({ to: 'a@x.com', subject: 's', text: 't' }), { instanceOf: RetryableError });
  t.false(down!.message.includes('s3cret'), 'the SMTP URL password never reaches the message');
});

/** Collects Node's process warnings (url.parse's DeprecationWarning quotes the whole URL) while a test runs. */
function processWarnings(t: import('ava').ExecutionContext): string[] {
  const seen: string[] = [];
  const listener = (w: Error) => seen.push(`${w.name}: ${w.message}`);
  process.on('warning', listener);
  t.teardown(() => void process.off('warning', listener));
  return seen;
}

test('a password with # / @ : % and a space logs in, once encoded into the URL as mail.smtpUrl has it', async (t) => {
  const password = 'Xy9#kL/m@n: o%41';
  const warnings = processWarnings(t);
  const { port, received, refusedLogins } = await startSmtp(t, { password });
  const mailer = createMailer(
    {
      welcome: true,
      alertsTo: [],
      from: 'pbx@example.com',
      smtpUrl: secret(`smtp://pbx:${encodeURIComponent(password)}@127.0.0.1:${port}`),
      outbox: '/nonexistent',
    },
    silentLogger(),
  );
  t.teardown(() => mailer.close());
  await mailer.send({ to: 'a@x.com', subject: 's', text: 't' });
  t.is(refusedLogins(), 0);
  t.is(received.length, 1);
  t.is(received[0].user, 'pbx');
  t.deepEqual(warnings, []);
});

const unusable: Array<[title: string, url: string]> = [
  ['an unencoded # in the password', 'smtp://pbx:Xy9#kLm@127.0.0.1:2599'],
  ['an unencoded @ and / in the password', 'smtp://pbx:a b@c:/d@127.0.0.1:2599'],
  ['a port out of range', 'smtp://pbx:Xy9kLm@127.0.0.1:99999'],
  ['an unknown scheme', 'smtpx://pbx:Xy9kLm@127.0.0.1:2599'],
];

for (const [title, url] of unusable) {
  test(`an SMTP URL with ${title} fails each send with a TerminalError, not the constructor, and prints nothing of it`, async (t) => {
    const warnings = processWarnings(t);
    let mailer: ReturnType<typeof createMailer> | undefined;
    t.notThrows(() => {
      mailer = createMailer({ welcome: true, alertsTo: [], from: 'pbx@example.com', smtpUrl: secret(url), outbox: '/nonexistent' }, silentLogger());
    });
    t.teardown(() => mailer!.close());
    const err = await t.throwsAsync(mailer!.send({ to: 'a@x.com', subject: 's', text: 't' }), { instanceOf: TerminalError });
    t.regex(err!.message, /^sending mail to a@x\.com failed: the SMTP URL \(mail\.smtpUrl\) (is not|must|names)/);
    for (const piece of ['Xy9', 'kLm', 'a b', 'c:/d']) t.false(err!.message.includes(piece), `quotes ${piece}`);
    t.deepEqual(warnings, []);
  });
}
