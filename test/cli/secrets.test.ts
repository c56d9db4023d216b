import test from 'ava';
import { makeWorkspace, person, threeCxCsv } from '../helpers/workspace.js';

/** service.yml with both secrets only the daemon (status token) or a writing run (SMTP password) uses. */
async function workspaceWithSecrets() {
  return makeWorkspace({
    mail: `mail:
  welcome: true
  from: pbx@example.com
  smtpUrl: "smtp://pbx:\${SMTP_PASS}@127.0.0.1:2525"`,
    status: `status:
  listen: 127.0.0.1:0
  token: "\${STATUS_TOKEN}"`,
  });
}

const NO_SECRETS = { SMTP_PASS: undefined, STATUS_TOKEN: undefined };

test('status, export, plan and explain work in a shell without the SMTP password or the status token', async (t) => {
  const ws = await workspaceWithSecrets();
  // A first import (with the SMTP password; mail to a closed port only stays pending) gives them something to show.
  const file = await ws.write('a.csv', threeCxCsv([person(1001, 'Anna', 'Smith')]));
  const imported = await ws.cli(['import', file], { env: { SMTP_PASS: 'pw', STATUS_TOKEN: undefined } });
  t.is(imported.code, 0, imported.stderr);

  const status = await ws.cli(['status', '--json'], { env: NO_SECRETS });
  t.is(status.code, 0, status.stderr);
  t.is((JSON.parse(status.stdout) as { target: { users: number } }).target.users, 1);

  const exported = await ws.cli(['export', '--format', 'csv'], { env: NO_SECRETS });
  t.is(exported.code, 0, exported.stderr);
  t.regex(exported.stdout, /^1001,Anna,Smith,/m);

  const plan = await ws.cli(['plan', '--json'], { env: NO_SECRETS });
  t.is(plan.code, 0, plan.stderr);

  const explained = await ws.cli(['explain', '1001', '--file', file], { env: NO_SECRETS });
  t.is(explained.code, 0, explained.stderr);
  t.regex(explained.stdout, /1001/);
});

test('a writing run still needs the SMTP password (exit 2 naming it), but not the status token; validate checks both', async (t) => {
  const ws = await workspaceWithSecrets();
  const file = await ws.write('a.csv', threeCxCsv([person(1001, 'Anna', 'Smith')]));

  const without = await ws.cli(['import', file], { env: NO_SECRETS });
  t.is(without.code, 2);
  t.regex(without.stderr, /mail\.smtpUrl: environment variable SMTP_PASS is not set/);
  t.notRegex(without.stderr, /STATUS_TOKEN/);
  t.is((JSON.parse((await ws.cli(['status', '--json'], { env: NO_SECRETS })).stdout) as { target: { users: number } }).target.users, 0);

  const withPassword = await ws.cli(['import', file], { env: { SMTP_PASS: 'pw', STATUS_TOKEN: undefined } });
  t.is(withPassword.code, 0, withPassword.stderr);

  const validate = await ws.cli(['validate'], { env: NO_SECRETS });
  t.is(validate.code, 2);
  t.regex(validate.stderr, /mail\.smtpUrl: environment variable SMTP_PASS is not set/);
  t.regex(validate.stderr, /status\.token: environment variable STATUS_TOKEN is not set/);
});
