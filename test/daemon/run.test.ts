import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { acquireLock } from '../../src/state/lock.js';
import { DROPPED_FILE_RETRY_FIRST_MS, droppedFileRetryMs } from '../../src/daemon/run.js';
import { slowSmtp } from '../helpers/smtp.js';
import { parseEml } from '../targets/embedded/helpers.js';
import { CLI, ROOT, makeWorkspace, person, staff, threeCxCsv, waitFor, type CsvRow, type Workspace } from '../helpers/workspace.js';
import { YEALINK, makeInstall, startDaemon as startThreeCxDaemon, startFake } from '../targets/threecx/e2e-helpers.js';

/** Starts `pbxsync run` as a real process and waits for its "running" log line (which names the status URL). */
async function startDaemon(ws: Workspace, env: NodeJS.ProcessEnv = {}): Promise<{ child: ChildProcess; statusUrl: string; logs: () => string; exited: Promise<number | null> }> {
  const child = spawn(process.execPath, [CLI, '--config', ws.config, 'run'], { cwd: ws.dir, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let logs = '';
  child.stdout!.on('data', (d) => (logs += d));
  child.stderr!.on('data', (d) => (logs += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const statusUrl = await waitFor('the daemon to start', () => {
    for (const line of logs.split('\n')) {
      if (!line.startsWith('{')) continue;
      const entry = JSON.parse(line) as { message?: string; status?: string };
      if (entry.message === 'pbxsync running' && entry.status) return entry.status;
    }
    if (child.exitCode !== null) throw new Error(`daemon exited: ${logs}`);
    return undefined;
  });
  return { child, statusUrl, logs: () => logs, exited };
}

/** Drops a file into the workspace's inbox as an admin's script would: written under a temporary name, renamed in. */
async function dropFile(ws: Workspace, name: string, text: string): Promise<void> {
  await fs.writeFile(path.join(ws.inbox, `.${name}.part`), text);
  await fs.rename(path.join(ws.inbox, `.${name}.part`), path.join(ws.inbox, name));
}

/** Waits for the JSON report of the file whose name starts with `stem` in `inbox/<folder>` and reads it. */
async function reportIn<T = Record<string, unknown>>(ws: Workspace, folder: 'processed' | 'failed', stem: string): Promise<T> {
  const dir = path.join(ws.inbox, folder);
  const file = await waitFor(`the report of ${stem} in ${folder}/`, async () => {
    const r = (await fs.readdir(dir).catch(() => [] as string[])).find((n) => n.startsWith(stem) && n.endsWith('.report.json'));
    return r && path.join(dir, r);
  }, 45_000);
  return JSON.parse(await fs.readFile(file, 'utf8')) as T;
}

test('daemon: a CSV dropped into inbox/ is applied within seconds, moved to processed/ with a report, and export gives the users back', async (t) => {
  const ws = await makeWorkspace();
  const daemon = await startDaemon(ws);
  t.teardown(() => daemon.child.kill('SIGKILL'));

  const rows = [
    person(1001, 'Anna', 'Smith', { MobileNumber: '+14155550101', Department: 'Sales', Role: '”<rolename=””managers””/>”' }),
    person(1002, 'Bob', 'Stone', { DID: '+14155550102' }),
    person(911, 'Not', 'Allowed'),
  ];
  await dropFile(ws, 'staff.csv', threeCxCsv(rows));

  const processed = path.join(ws.inbox, 'processed');
  const rep = await reportIn<{ rows: number; rejected: Array<{ line: number; reason: string }> }>(ws, 'processed', 'staff');
  t.true((await fs.readdir(processed)).includes('staff.csv'));
  await t.throwsAsync(fs.access(path.join(ws.inbox, 'staff.csv')));
  t.is(rep.rows, 3);
  t.is(rep.rejected.length, 1);
  t.is(rep.rejected[0]!.line, 4);
  t.regex(rep.rejected[0]!.reason, /emergency/);

  const exported = await ws.cli(['export', '--format', 'csv']);
  t.is(exported.code, 0, exported.stderr);
  const records = parse(exported.stdout, { columns: true }) as Array<Record<string, string>>;
  t.deepEqual(records.map((r) => r.Number), ['1001', '1002']);
  const anna = records[0];
  t.is(anna.FirstName, 'Anna');
  t.is(anna.EmailAddress, 'anna.smith@example.com');
  t.is(anna.MobileNumber, '+14155550101');
  t.is(anna.Department, 'Sales');
  t.is(anna.Role, '<rolename="managers"/>');
  t.is(records[1].DID, '+14155550102');

  // Status server on loopback.
  const health = await fetch(`${daemon.statusUrl}/healthz`);
  t.is(health.status, 200);
  const status = (await (await fetch(`${daemon.statusUrl}/status`)).json()) as { managed: number; runs: Array<{ exitCode: number }> };
  t.is(status.managed, 2);
  t.is(status.runs[0].exitCode, 4);
  const metrics = await (await fetch(`${daemon.statusUrl}/metrics`)).text();
  t.regex(metrics, /pbxsync_/);

  // The file was read from the watcher's staging folder, but the audit trail, the rejected row and the record of
  // the input applied last name it where the admin dropped it.
  const dropped = path.join(ws.inbox, 'staff.csv');
  const audit = (await Promise.all((await fs.readdir(path.join(ws.stateDir, 'audit'))).map((f) => fs.readFile(path.join(ws.stateDir, 'audit', f), 'utf8')))).join('');
  const created = audit.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { op: string; record?: string });
  t.deepEqual(created.filter((e) => e.op === 'create').map((e) => e.record), [`${dropped}:2`, `${dropped}:3`]);
  t.false(audit.includes('.pbxsync-processing'));
  const cliStatus = JSON.parse((await ws.cli(['status', '--json'])).stdout) as { sources: Array<{ lastApplied?: { file: string } }> };
  t.is(cliStatus.sources[0]!.lastApplied?.file, dropped);

  // Every log line is JSON, and the lines of a run carry its id.
  const lines = daemon.logs().split('\n').filter(Boolean);
  t.true(lines.every((l) => l.startsWith('{')), 'JSON logs only');
  t.true(lines.some((l) => /"runId":"\d{8}T\d{6}Z-[0-9a-f]{6}"/.test(l) && l.includes('applied')));

  daemon.child.kill('SIGTERM');
  t.is(await daemon.exited, 0, 'stops cleanly on SIGTERM');
});

test('daemon: a file with no usable row goes to failed/ with its report', async (t) => {
  const ws = await makeWorkspace();
  const daemon = await startDaemon(ws);
  t.teardown(() => daemon.child.kill('SIGKILL'));
  await fs.writeFile(path.join(ws.inbox, 'bad.csv'), 'this is,not,a pbx file\n1,2,3\n');
  const failed = path.join(ws.inbox, 'failed');
  await waitFor('the bad file in failed/', async () => (await fs.readdir(failed).catch(() => [] as string[])).some((n) => n.endsWith('.report.json')), 45_000).catch(
    (err: Error) => {
      throw new Error(`${err.message}\ndaemon log:\n${daemon.logs()}`);
    },
  );
  t.true((await fs.readdir(failed)).includes('bad.csv'));
  daemon.child.kill('SIGTERM');
  t.is(await daemon.exited, 0);
});

test('daemon: the same export dropped again is recognised as applied (nothing compared) and still gets its report', async (t) => {
  const ws = await makeWorkspace();
  const daemon = await startDaemon(ws);
  t.teardown(() => daemon.child.kill('SIGKILL'));
  const csv = threeCxCsv([person(1001, 'Anna', 'Smith'), person(1002, 'Bob', 'Stone')]);
  const processed = path.join(ws.inbox, 'processed');
  type Report = { rows: number; applied: number; summary: { create: number; unchanged: number } };

  await dropFile(ws, 'monday.csv', csv);
  const first = await reportIn<Report>(ws, 'processed', 'monday');
  t.is(first.summary.create, 2);

  await dropFile(ws, 'tuesday.csv', csv);
  const second = await reportIn<Report>(ws, 'processed', 'tuesday');
  t.like(second, { rows: 2, applied: 0, summary: { create: 0, unchanged: 2 } });
  t.true((await fs.readdir(processed)).includes('tuesday.csv'));
  t.regex(daemon.logs(), /"message":"input already applied; skipped"/);

  daemon.child.kill('SIGTERM');
  t.is(await daemon.exited, 0);
});

test('daemon: an edited mapping applies to the next dropped file without a restart; a mapping that does not compile stops the start (exit 2)', async (t) => {
  const shipped = await fs.readFile(path.join(ROOT, 'mappings/3cx-csv.yml'), 'utf8');
  const ws0 = await makeWorkspace();
  const mappingFile = await ws0.write('mapping.yml', shipped);
  const ws = await makeWorkspace({ mapping: mappingFile });
  const daemon = await startDaemon(ws);
  t.teardown(() => daemon.child.kill('SIGKILL'));
  const drop = async (name: string) => {
    await dropFile(ws, `${name}.csv`, threeCxCsv([person(1001, 'Anna', 'Smith', { Department: '' })]));
    return reportIn<{ summary: { create: number; update: number; unchanged: number } }>(ws, 'processed', name);
  };

  t.like(await drop('monday'), { summary: { create: 1 } });
  await fs.writeFile(mappingFile, shipped.replace('  default: DEFAULT\n', '  default: Support\n'));
  // The same rows again: under the edited mapping they are not "already applied", and Anna moves to Support.
  t.like(await drop('tuesday'), { summary: { create: 0, update: 1, unchanged: 0 } });
  t.regex(daemon.logs(), /"message":"mapping file changed; the new version applies from this run"/);
  const exported = await ws.cli(['export', '--format', 'csv']);
  t.is((parse(exported.stdout, { columns: true }) as Array<Record<string, string>>)[0]?.Department, 'Support');
  daemon.child.kill('SIGTERM');
  t.is(await daemon.exited, 0);

  // Broken while stopped: the next start refuses, naming the file, line and field, like a bad service.yml.
  await fs.writeFile(mappingFile, shipped.replace('  create: true\n', '  create: maybe\n'));
  const refused = await ws.cli(['run']);
  t.is(refused.code, 2);
  t.regex(refused.stderr, /mapping\.yml:\d+:\d+: department\.create: must be boolean/);
});

test('daemon: a file dropped while another pbxsync process holds the lock stays in the folder and is applied once the lock is free', async (t) => {
  const ws = await makeWorkspace();
  const daemon = await startDaemon(ws);
  t.teardown(() => daemon.child.kill('SIGKILL'));
  // This test process plays the other pbxsync process (a manual `pbxsync import`, say).
  const release = await acquireLock(ws.stateDir);
  let released = false;
  t.teardown(async () => {
    if (!released) await release();
  });

  await dropFile(ws, 'busy.csv', threeCxCsv([person(1001, 'Anna', 'Smith')]));
  await waitFor('the file left in place', () => daemon.logs().includes('"message":"drop folder file left in place"'), 45_000);
  t.regex(daemon.logs(), /another pbxsync process is applying .*; the file stays in the folder and is tried again in 5 s/);
  t.true((await fs.readdir(ws.inbox)).includes('busy.csv'));
  t.false((await fs.readdir(path.join(ws.inbox, 'failed')).catch(() => [] as string[])).includes('busy.csv'), 'not failed');

  await release();
  released = true;
  const processed = path.join(ws.inbox, 'processed');
  await waitFor('the file applied after the retry', async () => (await fs.readdir(processed).catch(() => [] as string[])).includes('busy.csv'), DROPPED_FILE_RETRY_FIRST_MS + 30_000);
  const exported = await ws.cli(['export', '--format', 'csv']);
  t.deepEqual((parse(exported.stdout, { columns: true }) as Array<Record<string, string>>).map((r) => r.Number), ['1001']);
  daemon.child.kill('SIGTERM');
  t.is(await daemon.exited, 0);
});

test('droppedFileRetryMs: 5 s, doubling, at most 5 minutes', (t) => {
  t.deepEqual([1, 2, 3, 4, 6, 7, 8, 50].map(droppedFileRetryMs), [5_000, 10_000, 20_000, 40_000, 160_000, 300_000, 300_000, 300_000]);
});

test('daemon: a plan held by a safety guard is told once by e-mail to mail.alertsTo (real SMTP server), not again at the next held run', async (t) => {
  const smtp = await slowSmtp(0);
  t.teardown(() => smtp.close());
  const ws = await makeWorkspace({
    mode: 'snapshot',
    mail: `mail:\n  welcome: false\n  from: pbx@example.com\n  alertsTo: [it-phones@example.com]\n  smtpUrl: smtp://127.0.0.1:${smtp.port}`,
  });
  const daemon = await startDaemon(ws);
  t.teardown(() => daemon.child.kill('SIGKILL'));
  const drop = async (name: string, rows: CsvRow[], folder: 'processed' | 'failed') => {
    await dropFile(ws, `${name}.csv`, threeCxCsv(rows));
    await waitFor(`${name}.csv in ${folder}/`, async () => (await fs.readdir(path.join(ws.inbox, folder)).catch(() => [] as string[])).includes(`${name}.csv`), 45_000);
  };

  await drop('all', staff(20), 'processed');
  await drop('half', staff(10), 'failed');
  const alert = parseEml(await waitFor('the alert e-mail', () => smtp.messages()[0], 20_000));
  t.is(alert.headers.to, 'it-phones@example.com');
  t.regex(alert.headers.subject ?? '', /^pbxsync on .+: plan held, nothing applied$/);
  t.regex(alert.text, /^Why: .*disable 10/m);
  t.regex(alert.text, /^ {2}pbxsync apply \S+\.json$/m);

  // The same half file again: held again for the same reason, and nobody is told twice.
  await drop('half-again', staff(10), 'failed');
  t.is(smtp.messages().length, 1, smtp.messages().join('\n---\n'));

  // A file of which nothing can be used (a broken export): told once, with its error. (A snapshot source's
  // read is then incomplete, so its runs fail: the file's alert says it, not a second one.)
  await dropFile(ws, 'broken.csv', 'this is,not,a pbx file\n1,2,3\n');
  await waitFor('broken.csv in failed/', async () => (await fs.readdir(path.join(ws.inbox, 'failed'))).includes('broken.csv.report.json'), 45_000);
  const broken = parseEml(await waitFor('the alert about broken.csv', () => smtp.messages()[1], 20_000));
  t.is(broken.headers.subject?.replace(/^pbxsync on [^:]+: /, ''), 'broken.csv went to failed/, nothing applied');
  t.regex(broken.text, /^Nothing could be read:\n {2}line 1, FirstName: the header has no column FirstName \(required\), and no key column: one of Number or EmailAddress is needed/m);
  const health = (JSON.parse((await ws.cli(['status', '--json'])).stdout) as { sources: Array<{ name: string; health?: { ok: boolean; error?: string } }> }).sources.find((s) => s.name === 'inbox')?.health;
  t.like(health, { ok: false, error: 'incomplete read' }, 'the source is failing');

  // The full staff again: the source works, which is told.
  await drop('all-again', staff(20), 'processed');
  const works = parseEml(await waitFor('the alert that the source works again', () => smtp.messages()[2], 20_000));
  t.is(works.headers.subject?.replace(/^pbxsync on [^:]+: /, ''), 'runs of source inbox work again');
  daemon.child.kill('SIGTERM');
  t.is(await daemon.exited, 0);
  t.is(smtp.messages().length, 3, smtp.messages().join('\n---\n'));
  t.regex(daemon.logs(), /"message":"alert sent"/);
});

type StatusSource = {
  name: string;
  lastFile?: { name: string; runId?: string; status: string; movedTo: string; rows: number; applied: number; rejected: number; failed: number };
  storage?: { folder: string; error: string; failures: number };
  degraded?: string;
};
const statusSources = async (url: string) => ((await (await fetch(`${url}/status`)).json()) as { sources: StatusSource[] }).sources;
const logLines = (logs: string) =>
  logs
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

test('daemon: a state folder pbxsync cannot use leaves the dropped file in the inbox, makes /healthz 503 naming the folder, and the file is applied once fixed', async (t) => {
  const ws = await makeWorkspace();
  const daemon = await startDaemon(ws);
  t.teardown(() => daemon.child.kill('SIGKILL'));
  // A folder where the PBX store file belongs: fails the same way as root (no EACCES for root) and is
  // deterministic.
  const store = path.join(ws.stateDir, 'pbx.json');
  await fs.mkdir(store, { recursive: true });

  await dropFile(ws, 'blocked.csv', threeCxCsv([person(1001, 'Anna', 'Smith')]));
  // The run's own record ("last run failed") can turn /healthz 503 a moment before the daemon has classified the
  // failure as its storage's: wait for that reason.
  const health = await waitFor('/healthz to turn unhealthy for the storage', async () => {
    const res = await fetch(`${daemon.statusUrl}/healthz`);
    if (res.status !== 503) return undefined;
    const body = (await res.json()) as { reasons: string[] };
    return body.reasons.some((r) => r.startsWith('source inbox: runs fail since')) ? body : undefined;
  }, 45_000);
  const reason = health.reasons.find((r) => r.startsWith('source inbox: runs fail since'));
  t.truthy(reason, health.reasons.join('\n'));
  t.true(reason!.includes(`pbxsync cannot use its own files in ${ws.stateDir} (EISDIR)`), reason);
  t.true((await fs.readdir(ws.inbox)).includes('blocked.csv'), 'the file stays in the inbox');
  t.deepEqual(await fs.readdir(path.join(ws.inbox, 'failed')).catch(() => []), [], 'not failed');
  const [source] = await statusSources(daemon.statusUrl);
  t.like(source, { name: 'inbox', storage: { folder: ws.stateDir } });
  t.true(source!.storage!.failures >= 1);
  const metrics = await (await fetch(`${daemon.statusUrl}/metrics`)).text();
  t.regex(metrics, /^pbxsync_storage_failures_total\{source="inbox"\} [1-9]/m);
  t.regex(metrics, /^pbxsync_source_degraded\{source="inbox"\} 1$/m);
  const told = logLines(daemon.logs()).find((l) => typeof l.message === 'string' && l.message.startsWith('pbxsync cannot use its state folder; fix it'));
  t.like(told, { level: 'error', folder: ws.stateDir, source: 'inbox', file: 'blocked.csv' });
  t.regex(String(told?.runId), /^\d{8}T\d{6}Z-[0-9a-f]{6}$/);

  // Fixed: the next try (5 s later) applies the file and the daemon is healthy again.
  await fs.rm(store, { recursive: true });
  const report = await reportIn<{ source: string; applied: number; file: string }>(ws, 'processed', 'blocked');
  t.like(report, { source: 'inbox', applied: 1, file: path.join(ws.inbox, 'blocked.csv') });
  await waitFor('/healthz healthy again', async () => (await fetch(`${daemon.statusUrl}/healthz`)).status === 200, 20_000);
  t.is((await statusSources(daemon.statusUrl))[0]!.storage, undefined);
  daemon.child.kill('SIGTERM');
  t.is(await daemon.exited, 0);
});

test('daemon: the last dropped file per source in /status and /metrics; a file that went to failed/ degrades /healthz until the next good file; its lines carry the run id', async (t) => {
  const ws = await makeWorkspace();
  const daemon = await startDaemon(ws);
  t.teardown(() => daemon.child.kill('SIGKILL'));

  // An upsert file with a rejected row: visible and counted, but healthy.
  await dropFile(ws, 'partly.csv', threeCxCsv([person(1001, 'Anna', 'Smith'), person(911, 'Not', 'Allowed')]));
  const partly = await reportIn<{ runId: string }>(ws, 'processed', 'partly');
  const after = await waitFor('the last file in /status', async () => (await statusSources(daemon.statusUrl))[0]?.lastFile);
  t.like(after, { name: 'partly.csv', runId: partly.runId, status: 'processed', rows: 2, applied: 1, rejected: 1, failed: 0 });
  t.is(after.movedTo, path.join(ws.inbox, 'processed', 'partly.csv'));
  t.is((await fetch(`${daemon.statusUrl}/healthz`)).status, 200);
  let metrics = await (await fetch(`${daemon.statusUrl}/metrics`)).text();
  t.regex(metrics, /^pbxsync_rejected_rows_total\{source="inbox"\} 1$/m);
  t.regex(metrics, /^pbxsync_dropped_files_total\{source="inbox",status="processed"\} 1$/m);

  // A file of which nothing is usable: /healthz says so until the next good file.
  await dropFile(ws, 'broken.csv', 'this is,not,a pbx file\n1,2,3\n');
  await reportIn(ws, 'failed', 'broken');
  const health = await waitFor('/healthz degraded', async () => {
    const res = await fetch(`${daemon.statusUrl}/healthz`);
    return res.status === 503 ? ((await res.json()) as { reasons: string[] }) : undefined;
  });
  t.true(health.reasons.some((r) => r.startsWith('source inbox: last file broken.csv went to failed/')), health.reasons.join('\n'));
  t.like((await statusSources(daemon.statusUrl))[0], { lastFile: { name: 'broken.csv', status: 'failed', applied: 0 } });
  metrics = await (await fetch(`${daemon.statusUrl}/metrics`)).text();
  t.regex(metrics, /^pbxsync_dropped_files_total\{source="inbox",status="failed"\} 1$/m);
  t.regex(metrics, /^pbxsync_source_degraded\{source="inbox"\} 1$/m);

  await dropFile(ws, 'good.csv', threeCxCsv([person(1002, 'Bob', 'Stone')]));
  await reportIn(ws, 'processed', 'good');
  await waitFor('/healthz healthy again', async () => (await fetch(`${daemon.statusUrl}/healthz`)).status === 200);

  // Every line about a file's run names that run.
  const fileLines = logLines(daemon.logs()).filter((l) => /^(processing dropped file|dropped file done|drop folder file moved|planned|applied)$/.test(String(l.message)));
  t.true(fileLines.filter((l) => l.message === 'drop folder file moved').length === 3);
  for (const line of fileLines) t.regex(String(line.runId), /^\d{8}T\d{6}Z-[0-9a-f]{6}$/, JSON.stringify(line));
  const moved = logLines(daemon.logs()).find((l) => l.message === 'drop folder file moved' && String(l.file).endsWith('partly.csv'));
  t.is(moved?.runId, partly.runId);
  daemon.child.kill('SIGTERM');
  t.is(await daemon.exited, 0);
});

test('daemon: the report of a dropped file lists its problems by line, each with its kind: a failed create at line 3, a conflict at line 5, a rejected row at line 7', async (t) => {
  // The 3CX fake, for an operation the PBX refuses when applied (an unknown phone template): the embedded store
  // refuses nothing the planner lets through.
  const fake = await startFake();
  t.teardown(() => fake.close());
  const install = await makeInstall(fake);
  fake.seedUser({ Number: '300', FirstName: 'Desk', LastName: 'Phone', Phones: [{ MacAddress: '805EC0AABBCC', TemplateName: YEALINK.Template }] });
  const rows = [
    person(1001, 'Anna', 'Smith'),
    person(1002, 'Bob', 'Stone', { MAC: '805ec0000002', Template: 'nosuch.ph.xml', Model: YEALINK.Model }),
    person(1003, 'Carla', 'Diaz'),
    person(1004, 'Dan', 'Ray', { MAC: '80-5e-c0-aa-bb-cc', ...YEALINK }),
    person(1005, 'Eve', 'Ray'),
    person(1006, 'Finn', 'Ray', { VMPIN: '12' }),
  ];
  const daemon = await startThreeCxDaemon(install);
  t.teardown(() => daemon.child.kill('SIGKILL'));
  const report = await daemon.drop('mixed.csv', threeCxCsv(rows));

  t.deepEqual(
    report.rejected.map((r) => [r.line, r.kind, r.record]),
    [
      [3, 'failed', '1002'],
      [5, 'conflict', '1004'],
      [7, 'rejected', '1006'],
    ],
  );
  t.regex(report.rejected[0]!.reason, /nosuch\.ph\.xml/);
  t.regex(report.rejected[1]!.reason, /805ec0aabbcc.*Desk Phone/i);
  t.is(report.rejected[2]!.column, 'VMPIN');
  // The counts are those of the run, whatever the order.
  t.like(report, { rows: 6, applied: 3, failed: 1, summary: { create: 3, conflicts: 1, errors: 2 } });
  t.is(await daemon.stop(), 0);
});
