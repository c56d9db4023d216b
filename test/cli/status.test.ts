import test from 'ava';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import { slowSmtp, smtpMailConfig } from '../helpers/smtp.js';
import { CLI, makeWorkspace, person, spawnDaemon, threeCxCsv, waitFor } from '../helpers/workspace.js';

/** A loopback port nobody listens on (bound, then closed): the mail server is "down". */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

test('status counts welcome e-mails still due while the mail server is down; the next run after it is back sends them', async (t) => {
  const down = await closedPort();
  const ws = await makeWorkspace({ mail: smtpMailConfig(down) });
  const file = await ws.write('a.csv', threeCxCsv([person(1001, 'Anna', 'Smith'), person(1002, 'Bob', 'Stone')]));
  const imported = await ws.cli(['import', file]);
  t.is(imported.code, 0, imported.stderr);
  t.regex(imported.stderr, /welcome e-mail not sent/);

  const status = JSON.parse((await ws.cli(['status', '--json'])).stdout) as { target: { users: number; welcomePending?: number } };
  t.is(status.target.users, 2);
  t.is(status.target.welcomePending, 2);
  t.regex((await ws.cli(['status'])).stdout, /welcome e-mails pending: 2/);

  // The mail server is back (same service.yml, another port): a run that writes sends what was due.
  const smtp = await slowSmtp(0);
  t.teardown(() => smtp.close());
  const config = await fs.readFile(ws.config, 'utf8');
  await fs.writeFile(ws.config, config.replace(`127.0.0.1:${down}`, `127.0.0.1:${smtp.port}`));
  const again = await ws.cli(['welcome', '1001']);
  t.is(again.code, 0, again.stderr);
  t.is(smtp.received(), 2, 'the requested one and the other one still due');
  const after = JSON.parse((await ws.cli(['status', '--json'])).stdout) as { target: { welcomePending?: number } };
  t.is(after.target.welcomePending, 0);
});

type Unsure = { extension: string; email?: string; since: string };
type WelcomeStatus = { target: { welcomePending?: number; welcomeUnsure?: Unsure[] } };

test('welcome mails the mail server had when pbxsync was killed are listed as unsure (CLI and /status) until a later send settles them', async (t) => {
  // Two mails answered, the next ones held: the round of four never ends, as at a kill -9 mid-round.
  const smtp = await slowSmtp(0, { holdAfter: 2 });
  t.teardown(() => smtp.close());
  const ws = await makeWorkspace({ mail: smtpMailConfig(smtp.port) });
  const file = await ws.write('staff.csv', threeCxCsv([1001, 1002, 1003, 1004].map((n) => person(n, `First${n}`, `Last${n}`))));
  const importing = spawn(process.execPath, [CLI, '--config', ws.config, 'import', file], { cwd: ws.dir, stdio: 'ignore' });
  const killed = new Promise((resolve) => importing.on('exit', resolve));
  await waitFor('the mail server holding a mail', () => smtp.received() > 2, 45_000);
  const killedAt = new Date().toISOString();
  importing.kill('SIGKILL');
  await killed;
  smtp.release();

  const unsure = async (): Promise<WelcomeStatus['target']> => {
    const out = await ws.cli(['status', '--json']);
    t.is(out.code, 0, out.stderr);
    return (JSON.parse(out.stdout) as WelcomeStatus).target;
  };
  const crashed = await unsure();
  t.deepEqual(crashed.welcomeUnsure?.map((u) => u.extension), ['1001', '1002', '1003', '1004'], 'the round in flight');
  t.is(crashed.welcomeUnsure?.[0]?.email, 'first1001.last1001@example.com');
  t.true(crashed.welcomeUnsure!.every((u) => u.since === crashed.welcomeUnsure![0]!.since && u.since <= killedAt));
  t.is(crashed.welcomePending, 4);
  const text = (await ws.cli(['status'])).stdout;
  t.regex(text, /^welcome e-mails unsure: 4 \(/m);
  t.regex(text, /^ {2}1003 first1003\.last1003@example\.com since \S+$/m);

  // A daemon that sends no welcome mails of its own shows the same list; an admin resends one next to it.
  await fs.writeFile(ws.config, (await fs.readFile(ws.config, 'utf8')).replace('welcome: true', 'welcome: false'));
  const daemon = spawnDaemon(ws);
  t.teardown(() => daemon.child.kill('SIGKILL'));
  const url = await waitFor('the daemon to start', () => /"message":"pbxsync running".*?"status":"(http:[^"]+)"/.exec(daemon.logs())?.[1]);
  const page = async () => ((await (await fetch(`${url}/status`)).json()) as WelcomeStatus).target;
  t.deepEqual((await page()).welcomeUnsure, crashed.welcomeUnsure);
  const resent = await ws.cli(['welcome', '1002']);
  t.is(resent.code, 0, resent.stderr);
  t.deepEqual((await unsure()).welcomeUnsure?.map((u) => u.extension), ['1001', '1003', '1004']);
  t.deepEqual((await page()).welcomeUnsure?.map((u) => u.extension), ['1001', '1003', '1004'], 'the page re-reads the changed store');
  daemon.child.kill('SIGTERM');
  t.is(await daemon.exited, 0, daemon.logs());

  // Welcome mails on again: the next send (here a resend) takes the rest that is due, and nothing is unsure.
  await fs.writeFile(ws.config, (await fs.readFile(ws.config, 'utf8')).replace('welcome: false', 'welcome: true'));
  t.is((await ws.cli(['welcome', '1001'])).code, 0);
  const settled = await unsure();
  t.deepEqual(settled.welcomeUnsure, []);
  t.is(settled.welcomePending, 0);
  t.notRegex((await ws.cli(['status'])).stdout, /unsure/);
});
