import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The built CLI (npm test builds before running ava). */
export const CLI = path.join(ROOT, 'dist/src/cli/main.js');

/** The full 3CX CSV header of seed 000, in its order. */
export const THREECX_COLUMNS = [
  'Number', 'FirstName', 'LastName', 'EmailAddress', 'MobileNumber', 'OutboundCallerID', 'DID', 'Role', 'Department',
  'ClickToCallId', 'ClickToCallAuth', 'WMApprove', 'MAC', 'Template', 'Model', 'Router', 'Language', 'Ringtone',
  'QRingtone', 'VMEnable', 'VMLanguage', 'VMPlayMsgDateTime', 'VMPIN', 'VMEmailOptions', 'VMNoPin', 'VMPlayCallerID',
  'RecordCalls', 'RecordExternal', 'RecordCanSee', 'RecordCanDelete', 'RecordStartStop', 'Disabled', 'HideFWrules',
  'DisableExternalCalls', 'HideInPhonebook', 'CallScreening', 'PinProtected', 'PinTimeout', 'AllowLanOnly', 'SIPID',
  'MS365SignInDisabled', 'MS365CalendarDisabled', 'MS365ContactsDisabled', 'MS365TeamsDisabled', 'GoogleSignInDisabled',
] as const;

export type CsvRow = Partial<Record<(typeof THREECX_COLUMNS)[number], string>>;

function cell(v: string | undefined): string {
  if (v === undefined) return '';
  return /[",\n\r;]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

/** A 3CX-format CSV text with the given rows (missing cells empty). */
export function threeCxCsv(rows: CsvRow[], columns: readonly string[] = THREECX_COLUMNS): string {
  const lines = [columns.join(',')];
  for (const r of rows) lines.push(columns.map((c) => cell((r as Record<string, string>)[c])).join(','));
  return lines.join('\r\n') + '\r\n';
}

/** A user row builder: `person(1001, 'Anna', 'Smith')`. */
export function person(number: number | string, first: string, last: string, extra: CsvRow = {}): CsvRow {
  return {
    Number: String(number),
    FirstName: first,
    LastName: last,
    EmailAddress: `${first}.${last}@example.com`.toLowerCase(),
    Department: 'DEFAULT',
    Role: '<rolename="users"/>',
    ...extra,
  };
}

/** `n` people with extensions from 1100 on: a staff list whose shorter versions are leavers. */
export function staff(n: number): CsvRow[] {
  return Array.from({ length: n }, (_, i) => person(1100 + i, `First${i}`, `Last${i}`));
}

/** Options of makeWorkspace. */
export interface WorkspaceOptions {
  mode?: 'upsert' | 'snapshot';
  /** YAML text appended to service.yml (e.g. a safety block). Top-level keys must not repeat the defaults below. */
  safety?: string;
  mapping?: string;
  apply?: string;
  mail?: string;
  status?: string;
  extra?: string;
}

/** A temporary pbxsync installation: its own service.yml, state folder and inbox. */
export interface Workspace {
  dir: string;
  config: string;
  inbox: string;
  stateDir: string;
  cli(args: string[], options?: { env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<{ code: number | null; stdout: string; stderr: string }>;
  write(name: string, text: string | Buffer): Promise<string>;
}

/** Creates a workspace under the OS temp folder. */
export async function makeWorkspace(options: WorkspaceOptions = {}): Promise<Workspace> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pbxsync-'));
  const mapping = options.mapping ?? path.join(ROOT, 'mappings/3cx-csv.yml');
  const yaml = `stateDir: data
target:
  type: embedded
sources:
  - name: inbox
    type: csv
    mapping: ${JSON.stringify(mapping)}
    csv:
      folder: inbox
      mode: ${options.mode ?? 'upsert'}
      stableMs: 300
schedule:
  poll: "*/5 * * * *"
  full: "30 2 * * *"
${options.safety ?? `safety:
  maxDeletes: 10
  maxDeletePercent: 10
  maxDisables: 10
  maxDisablePercent: 10
  minSourceRatio: 0.5
  removal:
    action: disable
    graceDays: 30`}
numbering:
  ranges:
    - { from: "1000", to: "1999" }
  reserved: []
  emergency: ["911", "112", "15", "17", "18", "999"]
${options.mail ?? `mail:
  welcome: true
  from: pbx@example.com`}
${options.status ?? `status:
  listen: 127.0.0.1:0`}
${options.apply ?? ''}
${options.extra ?? ''}
`;
  const config = path.join(dir, 'service.yml');
  await fs.writeFile(config, yaml);
  const inbox = path.join(dir, 'inbox');
  await fs.mkdir(inbox, { recursive: true });
  return {
    dir,
    config,
    inbox,
    stateDir: path.join(dir, 'data'),
    cli: (args, o) => runCli(['--config', config, ...args], { cwd: dir, env: o?.env, timeoutMs: o?.timeoutMs }),
    async write(name, text) {
      const file = path.join(dir, name);
      await fs.mkdir(path.dirname(file), { recursive: true });
      await fs.writeFile(file, text);
      return file;
    },
  };
}

/** Runs the built CLI and collects its output. */
export function runCli(
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: options.cwd ?? ROOT,
      env: { ...process.env, PBXSYNC_LOG_LEVEL: 'info', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Polls until `check` returns a truthy value or the time is up (then throws with `what`). */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 20_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** `pbxsync run` on a workspace as a real process: its output (JSON log lines) and its exit code. */
export function spawnDaemon(ws: Workspace) {
  const child = spawn(process.execPath, [CLI, '--config', ws.config, 'run'], { cwd: ws.dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let logs = '';
  child.stdout.on('data', (d) => (logs += d));
  child.stderr.on('data', (d) => (logs += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, exited, logs: () => logs };
}
