import fs from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import type { ServiceConfig } from '../config/types.js';
import type { SecretSlot } from '../config/load.js';
import type { Logger } from '../log.js';
import type { Engine } from '../engine/engine.js';
import type { SyncOutcome, SyncRequest } from '../engine/sync.js';
import type { SavedPlan } from '../engine/plans.js';
import type { StatusReport } from '../engine/status.js';
import { EXIT, UsageError, formatProblem } from '../errors/index.js';
import { inputFile, outFile, writeFileAtomically } from './files.js';

// Each command imports what it needs when it runs (`await import`): the daemon, the reconciler, the mapping
// engine and their libraries are most of pbxsync's start-up time, and `--help`, `validate` or `status` need
// few of them.

interface GlobalOptions {
  config: string;
  json?: boolean;
}

/**
 * The secrets a one-shot command may use: the PBX's (to read or write it) and the SMTP URL (welcome mails).
 * The status server's token belongs to `run` alone.
 */
const WRITING_SECRETS: readonly SecretSlot[] = ['clientSecret', 'smtpUrl'];
/** Commands that read the PBX and the state but never send mail. */
const READING_SECRETS: readonly SecretSlot[] = ['clientSecret'];

async function withEngine<T>(
  program: Command,
  fn: (engine: Engine, opts: GlobalOptions) => Promise<T>,
  secrets: readonly SecretSlot[] = WRITING_SECRETS,
): Promise<T> {
  const opts = program.opts<GlobalOptions>();
  const { loadConfig } = await import('../config/load.js');
  const { createEngine } = await import('../engine/engine.js');
  const config = await loadConfig(path.resolve(opts.config), { secrets });
  const logger = await makeLogger(config);
  const engine = await createEngine(config, { logger });
  try {
    return await fn(engine, opts);
  } finally {
    await engine.close();
  }
}

async function makeLogger(config: ServiceConfig): Promise<Logger> {
  const { createLogger } = await import('../log.js');
  return createLogger({ level: process.env.PBXSYNC_LOG_LEVEL ?? config.logging.level, file: config.logging.file });
}

const MAX_PRINTED_OPS = 200;

async function printOutcome(outcome: SyncOutcome, json: boolean | undefined): Promise<void> {
  const { formatPlan, inInputOrder, summaryJson } = await import('../reconcile/serialize.js');
  if (json) {
    process.stdout.write(JSON.stringify({ ...summaryJson(outcome.plan, outcome.report), heldPlan: outcome.heldPlanFile ?? null }) + '\n');
    return;
  }
  // A 100,000-user first import would print 100,000 lines: show the head, the JSON output has them all.
  const shown = outcome.plan.operations.length > MAX_PRINTED_OPS ? { ...outcome.plan, operations: outcome.plan.operations.slice(0, MAX_PRINTED_OPS) } : outcome.plan;
  const out: string[] = [formatPlan(shown)];
  if (shown !== outcome.plan) out.push(`… and ${outcome.plan.operations.length - MAX_PRINTED_OPS} more operations (--json lists them all)`);
  if (outcome.report) {
    // In input order like the rejected rows above: failures are recorded as apply meets them, in no order an
    // admin going through the file could use.
    const failed = inInputOrder(outcome.report.failed, (f) => ({ source: f.op.key?.source, file: f.op.origin?.file, line: f.op.origin?.line }));
    for (const f of failed) out.push(`✗ ${f.op.kind} ${f.op.extension}: ${f.error}`);
    const s = outcome.report.summary;
    out.push(
      `applied: ${s.create} created, ${s.update} updated, ${s.disable} disabled, ${s.enable} enabled, ${s.delete} deleted, ${s.adopt} adopted; ${outcome.report.failed.length} failed` +
        (outcome.report.interrupted ? ' (interrupted)' : ''),
    );
  }
  // formatPlan has said why the plan is held (and listed each rejected row) already; what is left is how to go on.
  if (outcome.plan.held && outcome.heldPlanFile) out.push(`review it, then approve with: pbxsync apply ${outcome.heldPlanFile}`);
  process.stdout.write(out.join('\n') + '\n');
}

/** A path as an admin would type it here: relative to the working folder when inside it. */
function shownPath(file: string): string {
  const relative = path.relative(process.cwd(), file);
  return relative && !relative.startsWith('..') && !path.isAbsolute(relative) ? relative : file;
}

/**
 * Notes for `plan` and `sync` about files waiting in the drop folders of the CSV sources they cover: those
 * commands never read a dropped file (the daemon and `import` do; `--full` re-reads the file applied last),
 * so an admin previewing a drop would otherwise see an empty plan and think the file changes nothing. The
 * files are those the daemon's watcher would take ({@link dropFolderFiles}).
 */
async function waitingFileNotes(engine: Engine, sources: string[] | undefined): Promise<string[]> {
  const { dropFolderFiles } = await import('../../connectors/csv/dropFolder.js');
  const notes: string[] = [];
  for (const source of engine.config.sources) {
    if (!source.csv || (sources?.length && !sources.includes(source.name))) continue;
    const files = await dropFolderFiles(source.csv);
    if (files.length === 0) continue;
    const names = files.slice(0, 3).map((f) => path.basename(f));
    if (files.length > 3) names.push(`and ${files.length - 3} more`);
    const one = files.length === 1;
    notes.push(
      `${files.length} file${one ? '' : 's'} waiting in ${shownPath(source.csv.folder)}/ (${names.join(', ')}) ${one ? 'is' : 'are'} ` +
        `not read by plan or sync: the daemon imports ${one ? 'it' : 'them'}, or run: pbxsync import ${one ? shownPath(files[0]!) : 'FILE'}` +
        (engine.config.sources.filter((s) => s.csv).length > 1 ? ` --source ${source.name}` : ''),
    );
  }
  return notes;
}

/** Runs one reconciliation with a progress bar (terminal only), prints the outcome, returns its exit code. */
async function syncAndPrint(engine: Engine, g: GlobalOptions, request: Omit<SyncRequest, 'onProgress'>): Promise<number> {
  const { runSync } = await import('../engine/sync.js');
  const { createProgress } = await import('./output.js');
  const progress = createProgress(!g.json);
  try {
    const outcome = await runSync(engine, { ...request, onProgress: progress.update });
    progress.stop();
    // `import` names its file; a sync without inputs reads no dropped file.
    if (!request.inputs) outcome.plan.notes = [...(outcome.plan.notes ?? []), ...(await waitingFileNotes(engine, request.sources))];
    await printOutcome(outcome, g.json);
    return outcome.exitCode;
  } finally {
    progress.stop();
  }
}

/** Registers every command of DESIGN §3 on the program; `setExit` receives each command's exit code. */
export function commands(program: Command, setExit: (code: number) => void): void {
  program
    .command('run')
    .description('run the daemon: schedules, drop-folder watch, status server; stops cleanly on SIGTERM/SIGINT')
    .action(async () => {
      const opts = program.opts<GlobalOptions>();
      const { loadConfig } = await import('../config/load.js');
      const { runDaemon } = await import('../daemon/run.js');
      const config = await loadConfig(path.resolve(opts.config));
      setExit(await runDaemon(config, { logger: await makeLogger(config) }));
    });

  program
    .command('sync')
    .description('one reconciliation now')
    .option('-s, --source <name...>', 'only these sources')
    .option('--full', 'ignore saved cursors and read everything')
    .option('--dry-run', 'plan only, change nothing')
    .option('--approve', 'let a plan held by a safety threshold through')
    .action(async (o: { source?: string[]; full?: boolean; dryRun?: boolean; approve?: boolean }) => {
      await withEngine(program, async (engine, g) => {
        setExit(await syncAndPrint(engine, g, { sources: o.source, full: !!o.full, dryRun: !!o.dryRun, approve: !!o.approve }));
      });
    });

  program
    .command('plan')
    .description('compute and print the plan; change nothing')
    .option('-s, --source <name...>', 'only these sources')
    .option('--full', 'ignore saved cursors and read everything')
    .option('-o, --out <file>', 'save the plan for `pbxsync apply` (in an existing folder)')
    .action(async (o: { source?: string[]; full?: boolean; out?: string }) => {
      const out = o.out === undefined ? undefined : await outFile('--out', o.out);
      await withEngine(program, async (engine, g) => {
        const { computePlan } = await import('../engine/sync.js');
        const { savedPlanText } = await import('../engine/plans.js');
        const target = await engine.openTarget({ readOnly: true });
        try {
          const { plan, sourceNames } = await computePlan(engine, { sources: o.source, full: !!o.full, dryRun: true, approve: false }, target, {
            withBasis: !!out,
          });
          if (out) {
            const text = savedPlanText(plan, { sources: sourceNames, full: !!o.full });
            await writeFileAtomically(out, async (stream) => {
              stream.write(text);
            });
          }
          plan.notes = [...(plan.notes ?? []), ...(await waitingFileNotes(engine, o.source))];
          await printOutcome({ runId: plan.runId, plan, reads: [], heldPlanFile: out, exitCode: 0 }, g.json);
          setExit(plan.held ? EXIT.held : plan.issues.length || plan.summary.conflicts ? EXIT.partial : EXIT.ok);
        } finally {
          await target.close();
        }
      }, READING_SECRETS);
    });

  program
    .command('apply')
    .description('apply a saved plan (also a held one); refuses a plan whose basis changed')
    .argument('<file>', 'plan file written by `plan --out` or saved when a plan was held')
    .action(async (file: string) => {
      await withEngine(program, async (engine, g) => {
        let saved: SavedPlan;
        try {
          saved = JSON.parse(await fs.readFile(path.resolve(file), 'utf8')) as SavedPlan;
        } catch (err) {
          throw new UsageError(`cannot read plan file ${file}: ${(err as Error).message}`);
        }
        const { runSync } = await import('../engine/sync.js');
        const { approvalRequest } = await import('../engine/plans.js');
        const outcome = await runSync(engine, approvalRequest(saved, file));
        await printOutcome(outcome, g.json);
        setExit(outcome.exitCode);
      });
    });

  program
    .command('import')
    .description('one CSV file through the same pipeline as the drop folder')
    .argument('<file>', 'CSV file (3CX import format unless the source mapping says otherwise)')
    .option('-s, --source <name>', 'the CSV source whose mapping and mode apply (default: the first csv source)')
    .option('--dry-run', 'plan only, change nothing')
    .option('--approve', 'let a plan held by a safety threshold through')
    .action(async (file: string, o: { source?: string; dryRun?: boolean; approve?: boolean }) => {
      await withEngine(program, async (engine, g) => {
        const source = o.source ?? engine.config.sources.find((s) => s.type === 'csv')?.name;
        if (!source) throw new UsageError(`no csv source in ${engine.config.file}; add one or name it with --source`);
        // A wrong path is the admin's mistake, not a failure of the source: refused before the run starts, so
        // neither the run history nor the source's health (status, the daemon's alerts) records it.
        const abs = await inputFile('import:', file);
        setExit(
          await syncAndPrint(engine, g, { sources: [source], full: false, dryRun: !!o.dryRun, approve: !!o.approve, inputs: { [source]: abs } }),
        );
      });
    });

  program
    .command('export')
    .description("the PBX's users; csv is the 3CX import format")
    .option('-f, --format <format>', 'csv (the default) or json (the default with --json)')
    .option('-o, --out <file>', 'write to a file (in an existing folder) instead of stdout')
    .action(async (o: { format?: string; out?: string }) => {
      const g = program.opts<GlobalOptions>();
      const format = o.format ?? (g.json ? 'json' : 'csv');
      if (format !== 'csv' && format !== 'json') throw new UsageError(`--format must be csv or json, not ${format}`);
      const out = o.out === undefined ? undefined : await outFile('--out', o.out);
      await withEngine(program, async (engine) => {
        const { exportUsers } = await import('../engine/export.js');
        if (!out) {
          // Piped into a reader that stops early (`| head`): as with any Unix tool, that is the end, not an error.
          return exportUsers(engine, format, process.stdout).catch((err: NodeJS.ErrnoException) => {
            if (err.code !== 'EPIPE') throw err;
          });
        }
        // Written aside and renamed in: a reader of the file never sees half an export.
        await writeFileAtomically(out, (stream) => exportUsers(engine, format, stream));
      }, READING_SECRETS);
    });

  program
    .command('explain')
    .description('for an identity (anchor, e-mail) or an extension: what pbxsync knows of it, every mapping decision and why')
    .argument('<id>', 'e-mail address, extension, anchor or source/anchor')
    .option('-f, --file <csv>', 'CSV file to look the source record up in (default: the newest processed files)')
    .option(
      '-s, --source <name>',
      "the source whose record and mapping apply (default: the source/ prefix of ID, the CSV source whose folder holds --file, the source managing the user)",
    )
    .action(async (id: string, o: { file?: string; source?: string }) => {
      await withEngine(program, async (engine, g) => {
        const { explain } = await import('../engine/explain.js');
        const file = o.file === undefined ? undefined : await inputFile('--file', o.file);
        const result = await explain(engine, id, { file, source: o.source });
        // An id that names nothing pbxsync knows is the admin's to correct, like `welcome` of an unknown extension.
        if (!result.found) throw new UsageError(result.text);
        if (g.json) process.stdout.write(JSON.stringify(result.data) + '\n');
        else process.stdout.write(result.text + '\n');
      }, READING_SECRETS);
    });

  program
    .command('welcome')
    .description('send the welcome e-mail (account details) to a user again')
    .argument('<extension>', 'the extension of the user')
    .action(async (extension: string) => {
      await withEngine(program, async (engine, g) => {
        const { acquireLock } = await import('../state/lock.js');
        const release = await acquireLock(engine.config.stateDir);
        const target = await engine.openTarget();
        try {
          let id: string | undefined;
          for await (const u of target.listUsers()) if (u.extension === extension) id = u.id;
          if (!id) throw new UsageError(`no user with extension ${extension}`);
          await target.sendWelcome(id);
          await target.commit();
          if (g.json) process.stdout.write(JSON.stringify({ extension, sent: true }) + '\n');
          else process.stdout.write(`welcome e-mail for ${extension} sent\n`);
        } finally {
          await target.close();
          await release();
        }
      });
    });

  program
    .command('validate')
    .description('check the configuration and mapping files; every problem with file, line and path')
    .action(async () => {
      const g = program.opts<GlobalOptions>();
      const { validateConfig } = await import('../config/load.js');
      const { validateMappingFile } = await import('../mapping/load.js');
      const { config, problems, warnings } = await validateConfig(path.resolve(g.config));
      const all = [...problems];
      if (config) {
        for (const s of config.sources) {
          all.push(...(await validateMappingFile(s.mapping, { numbering: config.numbering, removal: config.safety.removal })));
        }
      }
      if (g.json) {
        process.stdout.write(JSON.stringify({ valid: all.length === 0, problems: all, warnings }) + '\n');
      } else {
        for (const w of warnings) process.stderr.write(`warning: ${formatProblem(w)}\n`);
        for (const p of all) process.stderr.write(`${formatProblem(p)}\n`);
        process.stdout.write(all.length === 0 ? `${g.config}: valid\n` : `${all.length} problem(s)\n`);
      }
      if (all.length) setExit(EXIT.usage);
    });

  program
    .command('status')
    .description('last runs, pending or held plans, source health, counts')
    .action(async () => {
      await withEngine(program, async (engine, g) => {
        const { collectStatus } = await import('../engine/status.js');
        const status = await collectStatus(engine);
        if (g.json) process.stdout.write(JSON.stringify(status, null, 2) + '\n');
        else process.stdout.write(formatStatus(status) + '\n');
      }, READING_SECRETS);
    });
}

function formatStatus(status: StatusReport): string {
  const lines: string[] = [];
  lines.push(`target: ${status.target.kind}, ${status.target.users} users (${status.managed} managed by pbxsync)`);
  if (status.target.welcomePending) {
    lines.push(`welcome e-mails pending: ${status.target.welcomePending} (sent with the next run that writes; or: pbxsync welcome EXTENSION)`);
  }
  const unsure = status.target.welcomeUnsure ?? [];
  if (unsure.length) {
    lines.push(
      `welcome e-mails unsure: ${unsure.length} (the mail server had them when pbxsync stopped; they may or may not have arrived, ` +
        'and go out again with the next run that writes; or: pbxsync welcome EXTENSION)',
    );
    for (const u of unsure) lines.push(`  ${u.extension}${u.email ? ` ${u.email}` : ''} since ${u.since}`);
  }
  if (status.held) lines.push(`HELD PLAN: ${status.held.reason}\n  approve with: pbxsync apply ${status.held.file}`);
  for (const s of status.sources) {
    // The time before the error: an error may run over several lines (a mapping's problems, one per line).
    const at = s.health?.at ? ` at ${s.health.at}` : '';
    lines.push(`source ${s.name} (${s.type}): ${s.health ? (s.health.ok ? `ok${at}` : `FAILING${at}: ${s.health.error ?? ''}`) : 'never ran'}`);
    if (s.lastApplied) lines.push(`  applied last: ${s.lastApplied.file} (run ${s.lastApplied.runId} at ${s.lastApplied.at}); the nightly full run re-applies it`);
    if (s.lastFile) {
      const f = s.lastFile;
      lines.push(
        `  last file: ${f.name} ${f.status} at ${f.at}${f.runId ? ` (run ${f.runId})` : ''}: ${f.rows} rows, ${f.applied} applied, ` +
          `${f.rejected} rejected, ${f.failed} failed; moved to ${f.movedTo}`,
      );
    }
    if (s.degraded) lines.push(`  DEGRADED: ${s.degraded}`);
  }
  lines.push('last runs:');
  for (const r of status.runs.slice(0, 10)) {
    lines.push(`  ${r.runId} ${r.sources.join(',')} exit ${r.exitCode}${r.held ? ` held: ${r.held}` : ''}${r.error ? ` error: ${r.error}` : ''}`);
  }
  return lines.join('\n');
}
