/**
 * Import benchmark (issue: foundation). Generates a 100,000-row 3CX CSV and measures, each phase in its own
 * process so peak RSS is that phase's own:
 *   parse   the CSV reader alone (decode + parse every row) — the baseline;
 *   import  the full pipeline into a fresh embedded store (read, map, plan, apply, commit);
 *   rerun   the same file again (must write nothing): recognised as the input already applied, with the PBX
 *           store and the bindings unchanged since (engine/unchanged.ts), so nothing is read or compared;
 *   compare the same file with `full` set, which always reads, maps and compares (what the nightly
 *           reconciliation does, and what a re-run costs when the store changed in between); it must write
 *           nothing either. Reported for transparency; the re-run target is about `rerun`.
 * Prints wall times, peak RSS and the ratios the issue sets targets for:
 *   import ≤ 3 × parse, rerun ≤ 25 % of import, peak RSS ≤ 400 MB.
 *
 * Welcome mails are switched off in the benchmark's configuration: 100,000 `.eml` files measure the disk,
 * not the sync engine.
 *
 * Usage: npm run bench   (or: node dist/bench/import.js [--rows N])
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HEADER =
  'Number,FirstName,LastName,EmailAddress,MobileNumber,OutboundCallerID,DID,Role,Department,ClickToCallId,ClickToCallAuth,WMApprove,MAC,Template,Model,Router,Language,Ringtone,QRingtone,VMEnable,VMLanguage,VMPlayMsgDateTime,VMPIN,VMEmailOptions,VMNoPin,VMPlayCallerID,RecordCalls,RecordExternal,RecordCanSee,RecordCanDelete,RecordStartStop,Disabled,HideFWrules,DisableExternalCalls,HideInPhonebook,CallScreening,PinProtected,PinTimeout,AllowLanOnly,SIPID,MS365SignInDisabled,MS365CalendarDisabled,MS365ContactsDisabled,MS365TeamsDisabled,GoogleSignInDisabled';
const DEPARTMENTS = ['DEFAULT', 'Sales', 'Support', 'Finance', 'Engineering', 'Operations', 'Legal', 'Marketing'];
const ROLES = ['users', 'users', 'users', 'users', 'receptionists', 'managers', 'group_admins'];

function row(i: number): string {
  const ext = String(100000 + i);
  const first = `First${i}`;
  const last = `Last${i % 9973}`;
  const mobile = `+1415${String(5000000 + i).padStart(7, '0')}`;
  const role = `"<rolename=""${ROLES[i % ROLES.length]}""/>"`;
  return [
    ext, first, last, `user${i}@example.com`, mobile, '', '', role, DEPARTMENTS[i % DEPARTMENTS.length],
    `cc${i}`, '0', '0', '', '', '', '', '', '', '', '1', '', '0', String(1000 + (i % 9000)), '1', '0', '0', '0', '', '0', '0',
    '1', '', '0', '0', '0', '0', '0', '', '1', '', '', '', '', '', '',
  ].join(',');
}

async function generate(file: string, rows: number): Promise<void> {
  const handle = await fs.open(file, 'w');
  try {
    let chunk = HEADER + '\r\n';
    for (let i = 0; i < rows; i++) {
      chunk += row(i) + '\r\n';
      if (chunk.length > 1 << 20) {
        await handle.write(chunk);
        chunk = '';
      }
    }
    await handle.write(chunk);
  } finally {
    await handle.close();
  }
}

interface PhaseResult {
  ms: number;
  maxRssMb: number;
  detail: Record<string, unknown>;
}

/** Runs one phase in a child process of this script and returns what it measured. */
function runPhase(phase: string, dir: string, file: string): PhaseResult {
  const self = fileURLToPath(import.meta.url);
  const res = spawnSync(process.execPath, [self, '--phase', phase, '--dir', dir, '--file', file], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
    env: { ...process.env, PBXSYNC_LOG_LEVEL: 'warn' },
  });
  if (res.status !== 0) throw new Error(`phase ${phase} failed (${res.status}): ${res.stderr}`);
  const line = res.stdout.trim().split('\n').pop()!;
  return JSON.parse(line) as PhaseResult;
}

async function phaseMain(phase: string, dir: string, file: string): Promise<void> {
  const started = performance.now();
  let detail: Record<string, unknown> = {};
  if (phase === 'parse') {
    const { openCsvFile } = await import('../connectors/csv/client.js');
    const csv = await openCsvFile(file);
    let rows = 0;
    for await (const r of csv.rows) if (r.cells.Number) rows++;
    await csv.close();
    detail = { rows };
  } else {
    const { loadConfig } = await import('../src/config/load.js');
    const { createEngine } = await import('../src/engine/engine.js');
    const { runSync } = await import('../src/engine/sync.js');
    const { silentLogger } = await import('../src/log.js');
    const config = await loadConfig(path.join(dir, 'service.yml'));
    const engine = await createEngine(config, { logger: silentLogger() });
    const storeFile = path.join(dir, 'data', 'pbx.json');
    // The store is the document and its journal: a run that writes nothing leaves both as they were.
    const stamp = async () => Promise.all([storeFile, `${storeFile}.journal`].map((f) => fs.stat(f).then((s) => `${s.mtimeMs}/${s.size}`).catch(() => null))).then((s) => s.join(' '));
    const before = await stamp();
    const outcome = await runSync(engine, { sources: ['bench'], inputs: { bench: file }, full: phase === 'compare', dryRun: false, approve: false });
    await engine.close();
    const after = await stamp();
    detail = { exitCode: outcome.exitCode, summary: outcome.report?.summary ?? outcome.plan.summary, unchanged: outcome.plan.summary.unchanged, storeRewritten: before !== after, skipped: outcome.plan.notes?.some((n) => n.includes(' is identical to the input applied')) ?? false };
  }
  const ms = performance.now() - started;
  const maxRssMb = process.resourceUsage().maxRSS / 1024;
  process.stdout.write(JSON.stringify({ ms, maxRssMb, detail }) + '\n');
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const arg = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const phase = arg('--phase');
  if (phase) return phaseMain(phase, arg('--dir')!, arg('--file')!);

  const rows = Number(arg('--rows') ?? 100_000);
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pbxsync-bench-'));
  const file = path.join(dir, 'users.csv');
  await generate(file, rows);
  await fs.writeFile(
    path.join(dir, 'service.yml'),
    `stateDir: data
target: { type: embedded }
sources:
  - name: bench
    type: csv
    mapping: ${JSON.stringify(path.join(root, 'mappings/3cx-csv.yml'))}
    csv: { folder: inbox, mode: upsert }
numbering:
  ranges: [{ from: "100000", to: "299999" }]
  reserved: []
  emergency: ["911", "112", "15", "17", "18", "999"]
mail: { welcome: false, from: pbx@example.com }
status: { listen: 127.0.0.1:0 }
apply: { concurrency: 16 }
`,
  );
  const size = (await fs.stat(file)).size;
  const parse = runPhase('parse', dir, file);
  const full = runPhase('import', dir, file);
  const rerun = runPhase('rerun', dir, file);
  const compare = runPhase('compare', dir, file);
  const fmt = (n: number) => n.toFixed(0).padStart(8);
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  process.stdout.write(
    [
      `pbxsync import benchmark — ${rows.toLocaleString('en')} rows, ${(size / 1048576).toFixed(1)} MB CSV`,
      `machine: ${os.cpus().length} × ${cpu}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`,
      '',
      'phase          wall ms   peak RSS MB',
      `parse only    ${fmt(parse.ms)}      ${fmt(parse.maxRssMb)}`,
      `full import   ${fmt(full.ms)}      ${fmt(full.maxRssMb)}   ${JSON.stringify(full.detail.summary)}`,
      `no-op re-run  ${fmt(rerun.ms)}      ${fmt(rerun.maxRssMb)}   unchanged=${rerun.detail.unchanged} storeRewritten=${rerun.detail.storeRewritten} skipped=${rerun.detail.skipped}`,
      `compared run  ${fmt(compare.ms)}      ${fmt(compare.maxRssMb)}   unchanged=${compare.detail.unchanged} storeRewritten=${compare.detail.storeRewritten} (full: read, map, compare)`,
      '',
      `full import / parse      = ${(full.ms / parse.ms).toFixed(2)}×   (target ≤ 3×)`,
      `no-op re-run / import    = ${((100 * rerun.ms) / full.ms).toFixed(1)} %   (target ≤ 25 %)`,
      `compared run / import    = ${((100 * compare.ms) / full.ms).toFixed(1)} %`,
      `peak RSS (parse, import, re-run) = ${Math.max(parse.maxRssMb, full.maxRssMb, rerun.maxRssMb).toFixed(0)} MB   (target ≤ 400 MB)`,
      `peak RSS of the compared run     = ${compare.maxRssMb.toFixed(0)} MB   (store, listing, mapped users and plan at once)`,
      '',
    ].join('\n'),
  );
  if (args.includes('--keep')) process.stdout.write(`kept ${dir}\n`);
  else await fs.rm(dir, { recursive: true, force: true });
}

await main();
