import test from 'ava';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { storedUsers } from './helpers/store.js';
import { CLI, makeWorkspace, person, threeCxCsv, waitFor } from './helpers/workspace.js';

/** Every string under a `credentials` object of the embedded store file: the generated secrets. */
function generatedSecrets(store: unknown, out: string[] = [], inCredentials = false): string[] {
  if (typeof store === 'string') {
    if (inCredentials && store.length >= 4) out.push(store);
  } else if (Array.isArray(store)) {
    for (const v of store) generatedSecrets(v, out, inCredentials);
  } else if (store && typeof store === 'object') {
    for (const [k, v] of Object.entries(store)) generatedSecrets(v, out, inCredentials || /credential/i.test(k));
  }
  return out;
}

test('no secret value appears in any log line, plan, report, export or status output', async (t) => {
  const token = 'status-token-5b4a3c2d1e';
  const pins = ['735193', '864202', '951357'];
  const ws = await makeWorkspace({
    status: `status:
  listen: 127.0.0.1:0
  token: \${PBXSYNC_STATUS_TOKEN}`,
    mode: 'snapshot',
  });
  const env = { PBXSYNC_STATUS_TOKEN: token, PBXSYNC_LOG_LEVEL: 'debug' };
  const child = spawn(process.execPath, [CLI, '--config', ws.config, 'run'], { cwd: ws.dir, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => child.kill('SIGKILL'));
  let logs = '';
  child.stdout.on('data', (d) => (logs += d));
  child.stderr.on('data', (d) => (logs += d));
  const statusUrl = await waitFor('daemon', () => /"status":"(http:[^"]+)"/.exec(logs)?.[1]);

  const rows = [
    person(1001, 'Anna', 'Smith', { VMPIN: pins[0] }),
    person(1002, 'Bob', 'Stone', { VMPIN: pins[1] }),
    person(1003, 'Carl', 'Short', { VMPIN: '12' }), // rejected: the report must name VMPIN without echoing it
  ];
  await fs.writeFile(path.join(ws.inbox, 'staff.csv'), threeCxCsv(rows));
  const processed = path.join(ws.inbox, 'processed');
  const reportFile = await waitFor('report', async () => {
    const r = (await fs.readdir(processed).catch(() => [] as string[])).find((n) => n.endsWith('.report.json'));
    return r && path.join(processed, r);
  });

  const unauthorized = await fetch(`${statusUrl}/status`);
  t.is(unauthorized.status, 401);
  const statusPage = await (await fetch(`${statusUrl}/status`, { headers: { authorization: `Bearer ${token}` } })).text();
  t.regex(statusPage, /inbox/);

  // A PIN change and a held snapshot: the plan output and the saved plan file hold before/after of a secret.
  const changed = await ws.write('changed.csv', threeCxCsv([person(1001, 'Anna', 'Smith', { VMPIN: pins[2] })]));
  const dry = await ws.cli(['import', changed, '--dry-run', '--json'], { env });
  t.regex(dry.stdout, /vmPin/, 'the PIN change is planned (and masked)');
  const held = await ws.cli(['import', changed, '--json'], { env });
  const heldPlan = JSON.parse(held.stdout.trim().split('\n').pop()!).heldPlan as string | null;
  // Approved: the PIN change is applied, and the audit log records it.
  const approved = await ws.cli(['import', changed, '--approve', '--json'], { env });
  t.is(approved.code, 0, approved.stderr);
  const statusCli = await ws.cli(['status', '--json'], { env });
  const exportJson = await ws.cli(['export', '--format', 'json'], { env });
  const exportCsv = await ws.cli(['export', '--format', 'csv'], { env });

  child.kill('SIGTERM');
  await new Promise((r) => child.on('exit', r));

  const store = await storedUsers(path.join(ws.stateDir, 'pbx.json'));
  const secrets = [token, ...pins.slice(0, 2), ...generatedSecrets(store)];
  t.true(secrets.length > 6, 'the store holds generated credentials to look for');

  const outputs: Record<string, string> = {
    logs,
    report: await fs.readFile(reportFile, 'utf8'),
    dryRun: dry.stdout + dry.stderr,
    held: held.stdout + held.stderr,
    heldPlan: heldPlan ? await fs.readFile(heldPlan, 'utf8') : '',
    statusPage,
    statusCli: statusCli.stdout + statusCli.stderr,
    exportJson: exportJson.stdout,
    exportCsv: exportCsv.stdout,
    state: await fs.readFile(path.join(ws.stateDir, 'state.json'), 'utf8'),
    journal: await fs.readFile(path.join(ws.stateDir, 'journal.jsonl'), 'utf8').catch(() => ''),
    approved: approved.stdout + approved.stderr,
    audit: (await Promise.all((await fs.readdir(path.join(ws.stateDir, 'audit'))).map((f) => fs.readFile(path.join(ws.stateDir, 'audit', f), 'utf8')))).join(''),
  };
  t.regex(outputs.audit, /"op":"update","extension":"1001".*"fields":\["vmPin"\],"before":\{"vmPin":"\[secret\]"\}/, 'the PIN change is audited, masked');
  t.truthy(outputs.heldPlan, 'the snapshot with one row was held and its plan saved');
  for (const [name, text] of Object.entries(outputs)) {
    for (const s of [...secrets, pins[2]]) {
      t.false(text.includes(s), `${name} contains a secret (${s.slice(0, 2)}…)`);
    }
  }
});
