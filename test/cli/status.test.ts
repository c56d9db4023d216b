import test from 'ava';
import fs from 'node:fs/promises';
import net from 'node:net';
import { slowSmtp, smtpMailConfig } from '../helpers/smtp.js';
import { makeWorkspace, person, threeCxCsv } from '../helpers/workspace.js';

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
