/**
 * End-to-end set-up for the 3CX target: the fake XAPI over HTTPS (this process's test CA) and a temporary
 * pbxsync installation whose service.yml points at it, driven through the real CLI and daemon processes
 * (`node dist/src/cli/main.js`). The client secret reaches the child only through the environment
 * (`clientSecret: "${...}"`), as an admin would configure it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startFakeXapi, type FakeXapi, type FakeXapiOptions, type RequestLogEntry, type XapiUser } from '../../fakes/xapi/server.js';
import { createTestCa } from '../../helpers/tls.js';
import { CLI, ROOT, runCli, waitFor } from '../../helpers/workspace.js';

export { person, threeCxCsv, waitFor } from '../../helpers/workspace.js';

const SECRET_ENV = 'PBXSYNC_E2E_XAPI_SECRET';

/** A US trunk whose DIDs the tests route (the shipped mapping's default region is US). */
export const TRUNK_DIDS = Array.from({ length: 10 }, (_, i) => `+1415555${String(150 + i).padStart(4, '0')}`);

/** A template and model the fake knows (its seeded PhoneTemplates). */
export const YEALINK = { Template: 'yealinkT4x.ph.xml', Model: 'Yealink T46U' };
export const SNOM = { Template: 'snomD7xx.ph.xml', Model: 'Snom D785' };

/** Starts the fake on 127.0.0.1 over HTTPS, with one US trunk holding {@link TRUNK_DIDS}. */
export async function startFake(options: FakeXapiOptions = {}): Promise<FakeXapi> {
  return startFakeXapi({ tls: createTestCa().issue(), trunks: [{ name: 'US Provider', didNumbers: TRUNK_DIDS }], ...options });
}

/** Options of {@link makeInstall}. */
export interface InstallOptions {
  mode?: 'upsert' | 'snapshot';
  /** Replaces the default (permissive) safety block. */
  safety?: string;
}

/** A temporary pbxsync installation targeting the fake. */
export interface Install {
  dir: string;
  config: string;
  inbox: string;
  stateDir: string;
  env: NodeJS.ProcessEnv;
  cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }>;
  /** `import FILE --json`, parsed. */
  importJson(file: string): Promise<CliRun>;
  write(name: string, text: string): Promise<string>;
}

/** A parsed `--json` outcome of sync/import plus the raw process result. */
export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
  json: SummaryJson;
}

export interface SummaryJson {
  runId: string;
  summary: Record<string, number>;
  held: string | null;
  operations: Array<{
    kind: string;
    extension: string;
    userId?: string;
    fields?: string[];
    reason: string;
    conflict?: { field: string; holder: string };
    before?: Record<string, unknown>;
    after?: Record<string, unknown>;
  }>;
  issues: Array<{ message: string; line?: number }>;
  failed?: Array<{ id: string; error: string }>;
}

export async function makeInstall(fake: FakeXapi, options: InstallOptions = {}): Promise<Install> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pbxsync-3cx-'));
  const yaml = `stateDir: data
target:
  type: 3cx
  url: ${JSON.stringify(fake.url)}
  clientId: ${JSON.stringify(fake.clientId)}
  clientSecret: "\${${SECRET_ENV}}"
  caFile: ${JSON.stringify(createTestCa().caFile)}
  concurrency: 4
  writesPerSecond: 200
  pageSize: 25
  timeoutMs: 10000
sources:
  - name: inbox
    type: csv
    mapping: ${JSON.stringify(path.join(ROOT, 'mappings/3cx-csv.yml'))}
    csv:
      folder: inbox
      mode: ${options.mode ?? 'upsert'}
      stableMs: 200
schedule:
  poll: "*/5 * * * *"
  full: "30 2 * * *"
${
  options.safety ??
  `safety:
  maxDeletes: 10
  maxDeletePercent: 100
  maxDisables: 10
  maxDisablePercent: 100
  minSourceRatio: 0.1
  removal:
    action: disable
    graceDays: 30`
}
numbering:
  ranges:
    - { from: "1000", to: "1999" }
  reserved: []
  emergency: ["911", "112", "15", "17", "18", "999"]
mail:
  welcome: true
  from: pbx@example.com
status:
  listen: 127.0.0.1:0
`;
  const config = path.join(dir, 'service.yml');
  await fs.writeFile(config, yaml);
  const inbox = path.join(dir, 'inbox');
  await fs.mkdir(inbox, { recursive: true });
  const env = { [SECRET_ENV]: fake.clientSecret, PBXSYNC_LOG_LEVEL: 'info' };
  const cli = (args: string[]) => runCli(['--config', config, ...args], { cwd: dir, env, timeoutMs: 30_000 });
  return {
    dir,
    config,
    inbox,
    stateDir: path.join(dir, 'data'),
    env,
    cli,
    async importJson(file) {
      const r = await cli(['import', file, '--json']);
      const last = r.stdout.trim().split('\n').pop() ?? '';
      let json: SummaryJson;
      try {
        json = JSON.parse(last) as SummaryJson;
      } catch {
        throw new Error(`import printed no JSON summary (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
      }
      return { ...r, json };
    },
    async write(name, text) {
      const file = path.join(dir, name);
      await fs.writeFile(file, text);
      return file;
    },
  };
}

/** A running `pbxsync run`. */
export interface Daemon {
  child: ChildProcess;
  logs(): string;
  exited: Promise<number | null>;
  /** Drops `text` into the inbox as `name` (written aside, renamed in) and waits for its report. */
  drop(name: string, text: string, outcome?: 'processed' | 'failed'): Promise<DropReport>;
  stop(): Promise<number | null>;
}

export interface DropReport {
  rows: number;
  applied: number;
  failed?: number;
  rejected: Array<{ line: number; kind: 'rejected' | 'conflict' | 'failed'; column?: string; record?: string; reason: string }>;
  summary: Record<string, number>;
  held: string | null;
}

/** Starts the daemon as a real process and waits until it says it is running. */
export async function startDaemon(install: Install): Promise<Daemon> {
  const child = spawn(process.execPath, [CLI, '--config', install.config, 'run'], {
    cwd: install.dir,
    env: { ...process.env, ...install.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let logs = '';
  child.stdout!.on('data', (d) => (logs += d));
  child.stderr!.on('data', (d) => (logs += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await waitFor('the daemon to start', () => {
    if (logs.includes('"pbxsync running"')) return true;
    if (child.exitCode !== null) throw new Error(`daemon exited: ${logs}`);
    return undefined;
  }, 30_000);
  return {
    child,
    logs: () => logs,
    exited,
    async drop(name, text, outcome = 'processed') {
      const part = path.join(install.inbox, `.${name}.part`);
      await fs.writeFile(part, text);
      await fs.rename(part, path.join(install.inbox, name));
      const folder = path.join(install.inbox, outcome);
      const base = name.replace(/\.csv$/, '');
      const report = await waitFor(
        `the report of ${name} in ${outcome}/`,
        async () => {
          if (child.exitCode !== null) throw new Error(`daemon exited: ${logs}`);
          const names = await fs.readdir(folder).catch(() => [] as string[]);
          const r = names.find((n) => n.startsWith(base) && n.endsWith('.report.json'));
          return r && path.join(folder, r);
        },
        30_000,
      );
      return JSON.parse(await fs.readFile(report, 'utf8')) as DropReport;
    },
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

/** The fake's user with this extension. */
export function userByNumber(fake: FakeXapi, number: string): XapiUser | undefined {
  return [...fake.state.users.values()].find((u) => u.Number === number);
}

/** Group names and roles of a user's memberships, main group first. */
export function memberships(fake: FakeXapi, u: XapiUser): Array<{ group: string; role: string }> {
  const main = u.Groups.filter((m) => m.GroupId === u.PrimaryGroupId);
  const rest = u.Groups.filter((m) => m.GroupId !== u.PrimaryGroupId);
  return [...main, ...rest].map((m) => ({ group: fake.state.groups.get(m.GroupId)?.Name ?? `?${m.GroupId}`, role: m.Rights.RoleName }));
}

/** DIDs routed to a DN, sorted. */
export function routedTo(fake: FakeXapi, dnId: number): string[] {
  return [...fake.state.routes].filter(([, r]) => r.DnId === dnId).map(([did]) => did).sort();
}

/** Write requests in the log (non-GET under /xapi/v1, read-only actions excluded), as `METHOD path`. */
export function writeLines(fake: FakeXapi): string[] {
  return writeRequests(fake).map((r) => `${r.method} ${r.path}`);
}

const READ_ONLY = ['Pbx.GetRoutes', 'Pbx.GetDuplicatedEmails', 'Pbx.GetPhoneRegistrars', 'Pbx.RetreivePeersByNumbers'];

export function writeRequests(fake: FakeXapi): RequestLogEntry[] {
  return fake.requests.filter(
    (r) => r.path.startsWith('/xapi/v1/') && r.method !== 'GET' && !READ_ONLY.includes(r.path.split('/').pop() ?? ''),
  );
}

/** Token requests in the log. */
export function tokenRequests(fake: FakeXapi): RequestLogEntry[] {
  return fake.requests.filter((r) => r.path === '/connect/token');
}

/**
 * Calls `action` once, right after the fake has logged its `n`-th request from now on (the log entry is
 * pushed when the response has been sent), so a fault lands at a precise point of a run.
 */
export function afterRequests(fake: FakeXapi, n: number, action: () => void): void {
  const log = fake.requests;
  const original = log.push;
  let seen = 0;
  log.push = function (this: RequestLogEntry[], ...items: RequestLogEntry[]) {
    const r = original.apply(this, items);
    seen += items.length;
    if (seen >= n) {
      log.push = original;
      action();
    }
    return r;
  };
}
