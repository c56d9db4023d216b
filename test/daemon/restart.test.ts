import test from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import { makeWorkspace, person, spawnDaemon, threeCxCsv, waitFor, type Workspace } from '../helpers/workspace.js';

type Source = {
  name: string;
  lastFile?: { name: string; runId?: string; at: string; status: string; movedTo: string; rows: number; applied: number; rejected: number; failed: number; error?: string };
  degraded?: string;
};
type Status = { target: { users: number | null }; sources: Source[] };

/** `pbxsync run` as a real process, once it says it runs: its status URL. */
async function startDaemon(ws: Workspace) {
  const daemon = spawnDaemon(ws);
  const url = await waitFor('the daemon to start', () => {
    if (daemon.child.exitCode !== null) throw new Error(`daemon exited: ${daemon.logs()}`);
    return /"message":"pbxsync running".*?"status":"(http:[^"]+)"/.exec(daemon.logs())?.[1];
  });
  return { ...daemon, url };
}

async function pageStatus(url: string): Promise<Status> {
  return (await (await fetch(`${url}/status`)).json()) as Status;
}

async function cliStatus(ws: Workspace): Promise<Status> {
  const out = await ws.cli(['status', '--json']);
  if (out.code !== 0) throw new Error(out.stderr);
  return JSON.parse(out.stdout) as Status;
}

async function drop(ws: Workspace, name: string, text: string): Promise<void> {
  await fs.writeFile(path.join(ws.inbox, `.${name}.part`), text);
  await fs.rename(path.join(ws.inbox, `.${name}.part`), path.join(ws.inbox, name));
}

test('daemon: the last dropped file and the degraded state of a failed/ file are in `pbxsync status` as on /status, and survive a restart until a clean run', async (t) => {
  const ws = await makeWorkspace({ mail: 'mail: { welcome: false, from: pbx@example.com }' });
  const first = await startDaemon(ws);
  t.teardown(() => first.child.kill('SIGKILL'));

  // Rejected rows alone: shown, not degraded.
  await drop(ws, 'partly.csv', threeCxCsv([person(1001, 'Anna', 'Smith'), person(911, 'Not', 'Allowed')]));
  const partly = await waitFor('the CLI to show partly.csv', async () => {
    const s = (await cliStatus(ws)).sources[0];
    return s?.lastFile?.name === 'partly.csv' && s;
  }, 45_000);
  t.like(partly.lastFile, { status: 'processed', rows: 2, applied: 1, rejected: 1, failed: 0, movedTo: path.join(ws.inbox, 'processed', 'partly.csv') });
  t.is(partly.degraded, undefined);

  await drop(ws, 'broken.csv', 'this is,not,a pbx file\n1,2,3\n');
  const broken = await waitFor('the CLI to show broken.csv', async () => {
    const s = (await cliStatus(ws)).sources[0];
    return s?.lastFile?.name === 'broken.csv' && s;
  }, 45_000);
  t.like(broken.lastFile, { status: 'failed', applied: 0, movedTo: path.join(ws.inbox, 'failed', 'broken.csv') });
  t.regex(broken.degraded ?? '', /^last file broken\.csv went to failed\/ \(/);
  const page = (await pageStatus(first.url)).sources[0]!;
  t.deepEqual(page.lastFile, broken.lastFile, 'the CLI and the page show the same record');
  t.is(page.degraded, broken.degraded);
  const text = (await ws.cli(['status'])).stdout;
  t.regex(text, /^ {2}last file: broken\.csv failed at \S+ \(run \S+\): \d+ rows, 0 applied, \d+ rejected, 0 failed; moved to \S+broken\.csv$/m);
  t.regex(text, /^ {2}DEGRADED: last file broken\.csv went to failed\//m);

  first.child.kill('SIGTERM');
  t.is(await first.exited, 0, first.logs());

  // A new daemon process knows the last file and still reports the source degraded.
  const second = await startDaemon(ws);
  t.teardown(() => second.child.kill('SIGKILL'));
  const after = (await pageStatus(second.url)).sources[0]!;
  t.deepEqual(after.lastFile, broken.lastFile);
  t.is(after.degraded, broken.degraded);
  const health = await fetch(`${second.url}/healthz`);
  t.is(health.status, 503);
  t.true(((await health.json()) as { reasons: string[] }).reasons.includes(`source inbox: ${broken.degraded}`));
  t.regex(await (await fetch(`${second.url}/metrics`)).text(), /^pbxsync_source_degraded\{source="inbox"\} 1$/m);

  // A clean run of the source (an admin's import next to the daemon) clears it; the last dropped file stays shown.
  const good = await ws.write('good.csv', threeCxCsv([person(1002, 'Bob', 'Stone')]));
  const imported = await ws.cli(['import', good]);
  t.is(imported.code, 0, imported.stderr);
  t.is((await fetch(`${second.url}/healthz`)).status, 200);
  const cleared = (await pageStatus(second.url)).sources[0]!;
  t.is(cleared.degraded, undefined);
  t.is(cleared.lastFile?.name, 'broken.csv');
  t.regex(await (await fetch(`${second.url}/metrics`)).text(), /^pbxsync_source_degraded\{source="inbox"\} 0$/m);
  t.is((await cliStatus(ws)).sources[0]!.degraded, undefined);
  t.is((await pageStatus(second.url)).target.users, 2, 'the page counts the PBX store’s users as the CLI does');
  // The managed-users gauge follows the import made next to the daemon, not the daemon's own last run.
  const managed = ((await cliStatus(ws)) as unknown as { managed: number }).managed;
  t.is(managed, 2);
  t.regex(await (await fetch(`${second.url}/metrics`)).text(), new RegExp(`^pbxsync_managed_users ${managed}$`, 'm'));

  second.child.kill('SIGTERM');
  t.is(await second.exited, 0, second.logs());
});
