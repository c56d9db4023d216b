import test from 'ava';
import fs from 'node:fs/promises';
import { closedPort, refusingSmtp, slowSmtp } from '../helpers/smtp.js';
import { makeWorkspace, person, threeCxCsv, type Workspace } from '../helpers/workspace.js';

const PASSWORD = 'Mail-Pa55word!';
const ENV = { SMTP_PASS: PASSWORD };

function mailBlock(port: number): string {
  return `mail:
  welcome: true
  from: pbx@example.com
  smtpUrl: "smtp://pbx:\${SMTP_PASS}@127.0.0.1:${port}"`;
}

/** Points the workspace's SMTP URL from port `from` to port `to`. */
async function moveSmtp(ws: Workspace, from: number, to: number): Promise<void> {
  const config = await fs.readFile(ws.config, 'utf8');
  await fs.writeFile(ws.config, config.replace(`127.0.0.1:${from}:`, `127.0.0.1:${to}:`).replace(`127.0.0.1:${from}"`, `127.0.0.1:${to}"`));
}

function occurrences(text: string, part: string): number {
  return text.split(part).length - 1;
}

/** A workspace whose two users' welcome mails are due: imported while the mail server on `down` was down. */
async function twoMailsDue(t: import('ava').ExecutionContext): Promise<{ ws: Workspace; down: number }> {
  const down = await closedPort();
  const ws = await makeWorkspace({ mail: mailBlock(down) });
  const imported = await ws.cli(['import', await ws.write('a.csv', threeCxCsv([person(1001, 'Anna', 'Smith'), person(1002, 'Bob', 'Stone')]))], { env: ENV });
  t.is(imported.code, 0, imported.stderr);
  t.is(await welcomePending(ws), 2);
  return { ws, down };
}

async function welcomePending(ws: Workspace): Promise<number | undefined> {
  const status = await ws.cli(['status', '--json'], { env: ENV });
  return (JSON.parse(status.stdout) as { target: { welcomePending?: number } }).target.welcomePending;
}

test('welcome with the mail server down: the refused connection is named once in the log line and once in the error, never with the password', async (t) => {
  const { ws, down } = await twoMailsDue(t);
  const welcome = await ws.cli(['welcome', '1001'], { env: ENV });
  t.is(welcome.code, 1, welcome.stderr);
  const cause = `connect ECONNREFUSED 127.0.0.1:${down}`;
  const lines = welcome.stderr.split('\n');
  const error = lines.filter((l) => l.startsWith('pbxsync: '));
  t.is(error.length, 1, welcome.stderr);
  t.is(occurrences(error[0]!, cause), 1, error[0]);
  t.regex(error[0]!, /^pbxsync: sending mail to .*anna\.smith@example\.com.* failed: connect ECONNREFUSED/);
  // One warning per mail tried (Anna's, asked for; Bob's, still due), each naming the cause once.
  const warnings = lines.filter((l) => l.includes('"message":"welcome e-mail not sent'));
  t.deepEqual(warnings.map((l) => (JSON.parse(l) as { extension: string }).extension), ['1001', '1002']);
  for (const w of warnings) t.is(occurrences(w, cause), 1, w);
  t.is(occurrences(welcome.stderr, cause), 3, welcome.stderr);
  t.false(welcome.stdout.includes(PASSWORD) || welcome.stderr.includes(PASSWORD));
  t.is(await welcomePending(ws), 2, 'both mails still owed');
});

for (const how of ['drop', 'busy'] as const) {
  test(`welcome with a mail server that ${how === 'drop' ? 'drops every connection' : 'answers 421 to every connection'}: one connection per due mail, and the mails stay owed until a later run sends them`, async (t) => {
    const { ws, down } = await twoMailsDue(t);
    const server = await refusingSmtp(how);
    t.teardown(() => server.close());
    await moveSmtp(ws, down, server.port);

    const welcome = await ws.cli(['welcome', '1001'], { env: ENV });
    t.is(welcome.code, 1, welcome.stderr);
    // Anna's mail once (asked for), Bob's once (still due, sent with the session's commit); counted by the server.
    t.is(server.connections(), 2, welcome.stderr);
    t.is(await welcomePending(ws), 2);
    if (how === 'busy') {
      // nodemailer quotes the reply in its message and appends it again; the admin reads it once.
      const error = welcome.stderr.split('\n').find((l) => l.startsWith('pbxsync: '))!;
      t.is(occurrences(error, 'Service not available, try again later'), 1, error);
    }

    const smtp = await slowSmtp(0, { auth: { user: 'pbx', pass: PASSWORD } });
    t.teardown(() => smtp.close());
    await moveSmtp(ws, server.port, smtp.port);
    const later = await ws.cli(['welcome', '1002'], { env: ENV });
    t.is(later.code, 0, later.stderr);
    t.is(smtp.received(), 2);
    t.is(await welcomePending(ws), 0);
  });
}
