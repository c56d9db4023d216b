import test from 'ava';
import fs from 'node:fs/promises';
import { closedPort, slowSmtp } from '../helpers/smtp.js';
import { makeWorkspace, person, threeCxCsv } from '../helpers/workspace.js';

/** Every character that ends or splits a URL's user-info, a space, and one that starts a %-escape. */
const PASSWORD = 'Xy9#kL/m@n: o%41';

/** The password as it could show up anywhere: raw, percent-encoded, and the pieces an unencoded URL split it into. */
const FORMS = [PASSWORD, encodeURIComponent(PASSWORD), 'Xy9#', '#kL', 'kL/m', 'm@n', 'n: o', 'o%41'];

function mailBlock(port: number): string {
  return `mail:
  welcome: true
  from: pbx@example.com
  smtpUrl: "smtp://pbx:\${SMTP_PASS}@127.0.0.1:${port}"`;
}

function assertClean(t: import('ava').ExecutionContext, what: string, output: string): void {
  for (const form of FORMS) t.false(output.includes(form), `${what} shows ${form}`);
  t.notRegex(output, /DeprecationWarning|Invalid URL|ENOTFOUND/, what);
}

test('an SMTP password with # / @ : % and a space: users are created while the server is down, the mail goes out once it is up, the password is printed nowhere', async (t) => {
  const down = await closedPort();
  const ws = await makeWorkspace({ mail: mailBlock(down) });
  const env = { SMTP_PASS: PASSWORD, PBXSYNC_LOG_LEVEL: 'debug' };

  const valid = await ws.cli(['validate'], { env });
  t.is(valid.code, 0, valid.stderr);
  assertClean(t, 'validate', valid.stdout + valid.stderr);

  // The server is down: the users are created anyway, their mails stay pending (welcome mail is a side effect).
  const file = await ws.write('a.csv', threeCxCsv([person(1001, 'Anna', 'Smith'), person(1002, 'Bob', 'Stone')]));
  const imported = await ws.cli(['import', file], { env });
  t.is(imported.code, 0, imported.stderr);
  t.regex(imported.stderr, /welcome e-mail not sent/);
  t.regex(imported.stderr, /ECONNREFUSED/);
  assertClean(t, 'import', imported.stdout + imported.stderr);
  const status = await ws.cli(['status', '--json'], { env });
  t.is((JSON.parse(status.stdout) as { target: { users: number; welcomePending?: number } }).target.welcomePending, 2);
  assertClean(t, 'status', status.stdout + status.stderr);

  // The server is up and wants exactly that password.
  const smtp = await slowSmtp(0, { auth: { user: 'pbx', pass: PASSWORD } });
  t.teardown(() => smtp.close());
  const config = await fs.readFile(ws.config, 'utf8');
  await fs.writeFile(ws.config, config.replace(`127.0.0.1:${down}`, `127.0.0.1:${smtp.port}`));
  const welcome = await ws.cli(['welcome', '1001'], { env });
  t.is(welcome.code, 0, welcome.stderr);
  t.is(smtp.refusedLogins(), 0);
  t.is(smtp.received(), 2, 'the requested one and the other one still due');
  assertClean(t, 'welcome', welcome.stdout + welcome.stderr);
  const after = await ws.cli(['status'], { env });
  t.regex(after.stdout, /source inbox \(csv\): ok/);
  t.notRegex(after.stdout, /welcome e-mails pending/);
  assertClean(t, 'status', after.stdout + after.stderr);
});

test('an unusable SMTP URL fails validate and import at load (exit 2, file, line, path), without printing the password', async (t) => {
  const ws = await makeWorkspace({
    mail: `mail:
  welcome: true
  from: pbx@example.com
  smtpUrl: "smtp://pbx:\${SMTP_PASS}@127.0.0.1:99999"`,
  });
  const env = { SMTP_PASS: PASSWORD };
  const valid = await ws.cli(['validate'], { env });
  t.is(valid.code, 2);
  t.regex(valid.stderr, /service\.yml:\d+:\d+: mail\.smtpUrl: must have a port from 1 to 65535/);
  assertClean(t, 'validate', valid.stdout + valid.stderr);

  const file = await ws.write('a.csv', threeCxCsv([person(1001, 'Anna', 'Smith')]));
  const imported = await ws.cli(['import', file], { env });
  t.is(imported.code, 2);
  t.regex(imported.stderr, /mail\.smtpUrl: must have a port from 1 to 65535/);
  assertClean(t, 'import', imported.stdout + imported.stderr);

  const empty = await ws.cli(['validate'], { env: { SMTP_PASS: '' } });
  t.is(empty.code, 2);
  t.regex(empty.stderr, /mail\.smtpUrl: environment variable SMTP_PASS is empty/);
});
