import fs from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { CsvSourceSettings, ServiceConfig, SourceConfig } from '../config/types.js';
import type { Logger } from '../log.js';
import { createEngine, type Engine } from '../engine/engine.js';
import { newRunId, runSync, type SyncOutcome } from '../engine/sync.js';
import { cachedTargetView, collectStatus } from '../engine/status.js';
import { recordDroppedFile, sourceFileProblem } from '../engine/droppedFile.js';
import { sendDueWelcomes } from '../engine/welcome.js';
import { createMetrics } from './metrics.js';
import { healthFromStatus, startStatusServer } from './status.js';
import { SourceMonitor } from './monitor.js';
import { createScheduler } from './scheduler.js';
import { Alerter, alertSnapshot } from './alerts.js';
import { createMailer } from '../mail/mailer.js';
import { LeaveFileInPlace, watchDropFolder, type FileOutcome } from '../../connectors/csv/dropFolder.js';
import { inLineOrder, rejectionFromIssue, type CsvRejection, type CsvReport } from '../../connectors/csv/report.js';
import { pruneMovedFiles } from '../../connectors/csv/retention.js';
import { EXIT, StorageError, describeError, isRetryable } from '../errors/index.js';
import { acquireDaemonLock } from '../state/lock.js';

/**
 * Builds the report written beside a processed or failed drop-folder file. Its entries (rejected rows,
 * conflicts, failed operations) are in line order, each with its kind: an admin fixes the file from top to
 * bottom, and three lists each in its own order sent them up and down it.
 */
export function csvReportFor(file: string, source: string, startedAt: Date, outcome: SyncOutcome): CsvReport {
  const read = outcome.reads.find((r) => r.source === source);
  const failedOps = outcome.report?.failed ?? [];
  const rejected: CsvRejection[] = [
    ...outcome.plan.issues.map(rejectionFromIssue),
    ...outcome.plan.operations
      .filter((op) => op.kind === 'conflict')
      .map((op): CsvRejection => ({ line: op.origin?.line ?? 0, kind: 'conflict', column: op.conflict?.field, record: op.key?.anchor ?? op.extension, reason: op.reason })),
    ...failedOps.map((f): CsvRejection => ({ line: f.op.origin?.line ?? 0, kind: 'failed', record: f.op.key?.anchor ?? f.op.extension, reason: f.error })),
  ];
  return {
    file,
    source,
    runId: outcome.runId,
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    rows: read?.count ?? 0,
    applied: outcome.report?.applied.length ?? 0,
    failed: failedOps.length,
    rejected: inLineOrder(rejected),
    summary: { ...(outcome.report?.summary ?? outcome.plan.summary) },
    held: outcome.plan.held,
  };
}

/**
 * Processes one dropped CSV file through the full pipeline and says where the file goes. `file` is the file to
 * read; the report names `options.dropped` (where it was dropped) when given.
 */
export async function processDroppedFile(
  engine: Engine,
  source: SourceConfig,
  file: string,
  signal?: AbortSignal,
  options: { runId?: string; dropped?: string } = {},
): Promise<FileOutcome> {
  const startedAt = new Date();
  const runId = options.runId ?? newRunId();
  const logger = engine.logger.child({ runId, source: source.name, file: path.basename(file) });
  logger.info('processing dropped file');
  const outcome = await runSync(engine, {
    runId,
    sources: [source.name],
    inputs: { [source.name]: file },
    ...(options.dropped ? { inputNames: { [source.name]: options.dropped } } : {}),
    full: false,
    dryRun: false,
    approve: false,
    signal,
  });
  if (outcome.report?.interrupted) {
    // Stopped part-way (SIGTERM): what was applied is committed and journaled; the file stays in the
    // folder and the next start applies the rest (a re-run of the same rows changes nothing twice).
    logger.info('stopped in the middle of a dropped file; it stays for the next start', { applied: outcome.report.applied.length });
    throw new LeaveFileInPlace('stopped in the middle of the file; it stays in the folder for the next start', { runId });
  }
  const report = csvReportFor(options.dropped ?? file, source.name, startedAt, outcome);
  const read = outcome.reads.find((r) => r.source === source.name);
  // failed/: the plan was held (nothing applied), or nothing in the file was usable. processed/: the good
  // rows applied, even when some were rejected (the report lists them) or a snapshot was incomplete (then
  // nobody was removed because of it, which the report's issues say).
  const unusable = !read || (read.desiredCount === 0 && read.issues.length > 0);
  const status: FileOutcome['status'] = outcome.exitCode === EXIT.held || unusable ? 'failed' : 'processed';
  logger.info('dropped file done', { status, exitCode: outcome.exitCode, summary: report.summary, held: outcome.plan.held });
  return { status, report };
}

/** Options of runDaemon. */
export interface DaemonOptions {
  logger: Logger;
  /** Resolves when the daemon should stop (tests); SIGTERM/SIGINT also stop it. */
  stopSignal?: Promise<void>;
  /** Called once everything listens (tests). */
  onReady?: (info: { statusUrl: string }) => void;
  /** The clock of the drop folders' retention (`csv.keepDays`; tests); default Date.now. */
  now?: () => number;
}

/**
 * The daemon: a status server, the drop-folder watchers, the poll and nightly schedules. Never runs two
 * reconciliations of one source at once, and refuses to start when another daemon runs on the same state
 * folder (LockedError, exit 1). SIGTERM/SIGINT stop it cleanly: no new work is taken, the operation in
 * flight finishes (or is journaled), the state is saved, then the process exits 0. A second signal while
 * stopping is logged and changes nothing; a third exits at once with 1 (as a crash would, which the journal
 * recovers from).
 */
export async function runDaemon(config: ServiceConfig, options: DaemonOptions): Promise<number> {
  const logger = options.logger;
  const releaseDaemonLock = await acquireDaemonLock(config.stateDir, {
    onCompromised: (err) => logger.error('lost the daemon lock of the state folder; another daemon may start on it', { stateDir: config.stateDir, error: err.message }),
  });
  try {
    return await runLocked(config, options);
  } finally {
    await releaseDaemonLock().catch((err) => logger.warn('could not release the daemon lock', { error: describeError(err) }));
  }
}

async function runLocked(config: ServiceConfig, options: DaemonOptions): Promise<number> {
  const logger = options.logger;
  // The gauge reads the engine created right after it (no scrape can come before the status server starts).
  let engineForMetrics: Engine | undefined;
  const metrics = createMetrics({
    managedUsers: async () => {
      if (!engineForMetrics) return 0;
      await engineForMetrics.state.refresh().catch(() => false);
      return engineForMetrics.state.managedCount;
    },
  });
  const engine = await createEngine(config, { logger, metrics });
  engineForMetrics = engine;
  try {
    // A mapping that does not compile is an invalid configuration (exit 2) at start, as service.yml is;
    // edited later, it fails that source's runs until fixed (see Engine.mapping).
    for (const source of config.sources) await engine.mapping(source.name);
  } catch (err) {
    await engine.close();
    throw err;
  }
  const scheduler = createScheduler({ timezone: config.schedule.timezone, logger });
  let stopping = false;
  const closers: Array<() => Promise<void>> = [];
  const alerter = createAlerter(config, engine);
  if (alerter) closers.push(() => alerter.close());
  const monitor = new SourceMonitor({ metrics, fileProblem: (source) => sourceFileProblem(engine, source) });
  // A failed file recorded before a restart still degrades its source.
  for (const source of config.sources) monitor.update(source.name);
  const targetView = cachedTargetView(engine);
  /** The status document; /healthz needs no look at the target. */
  const getStatus = async (withTarget = true) => {
    const report = await collectStatus(engine, withTarget ? { targetView } : { countTargetUsers: false });
    // The state was just re-read: another process's run may have cleared or degraded a source.
    for (const s of report.sources) monitor.update(s.name);
    return { ...report, sources: report.sources.map((s) => ({ ...s, ...monitor.status(s.name) })) };
  };

  const status = await startStatusServer({
    listen: config.status.listen,
    token: config.status.token,
    metrics,
    logger,
    getStatus: () => getStatus(),
    getHealth: async () => healthFromStatus(await getStatus(false)),
  });
  closers.push(status.close);
  // Before the watchers: a file dropped meanwhile would otherwise find the store locked by this.
  await sendDueWelcomes(engine, scheduler.signal);
  /** Tells the admins what the run of `source` changed (a held plan, a source failing or working again). */
  /** Tells what a run of `source` changed; after a dropped file that went to failed/, with that file's alert. */
  const alertAfter = async (source: string, failed?: { report: CsvReport; folder: string }): Promise<void> => {
    const snapshot = alertSnapshot(engine.state, [source]);
    await (failed ? alerter?.fileFailed(failed.report, failed.folder, snapshot) : alerter?.update(snapshot));
  };
  /** A scheduled run of `source`: never two of one source at once, then its alerts. */
  const scheduled = (source: string, full: boolean) => async (signal: AbortSignal) => {
    await scheduler.runExclusive(source, async (inner) => {
      await runScheduled(engine, monitor, source, full, anySignal(signal, inner));
      await alertAfter(source);
    });
  };

  for (const source of config.sources) {
    if (source.type === 'csv' && source.csv) {
      const settings = source.csv;
      await fs.mkdir(settings.folder, { recursive: true });
      const prune = () => pruneOldFiles(source.name, settings, logger, options.now?.());
      await prune();
      /** Failed tries per dropped path (the staged copy's path changes at every try). */
      const retries = new Map<string, number>();
      const watcher = watchDropFolder({
        settings,
        source: source.name,
        logger: logger.child({ source: source.name }),
        onMoved: async ({ report, status, movedTo }) => {
          const file = monitor.fileMoved(source.name, report, status, movedTo);
          try {
            await recordDroppedFile(engine, source.name, file, scheduler.signal);
          } catch (err) {
            logger.warn('could not record the last dropped file in the state; status shows the one before', {
              source: source.name,
              file: file.name,
              error: describeError(err),
            });
          }
          monitor.update(source.name);
        },
        onFile: async (file, { dropped }) => {
          await prune();
          // Chosen here so every line about this file's run carries it, the watcher's included.
          const runId = newRunId();
          const runLogger = logger.child({ runId, source: source.name, file: path.basename(dropped) });
          const startedAt = new Date();
          let result: FileOutcome | undefined;
          try {
            result = await scheduler.runExclusive(source.name, async (signal) => {
              let outcome: FileOutcome | undefined;
              try {
                outcome = await processDroppedFile(engine, source, file, signal, { runId, dropped });
                return outcome;
              } finally {
                await alertAfter(source.name, outcome?.status === 'failed' ? { report: outcome.report, folder: settings.failed } : undefined);
              }
            });
          } catch (err) {
            if (err instanceof LeaveFileInPlace) throw err;
            // Whatever a stopping daemon's run ran into, the file waits for the next start.
            if (stopping) throw new LeaveFileInPlace(`the daemon is stopping (${describeError(err)}); the file stays for the next start`, { runId });
            // A passing failure (another pbxsync process holds the lock, the PBX is unreachable, the state
            // folder cannot be written) must not send the admin's file to failed/: it stays and is tried
            // again, less often each time.
            if (!isRetryable(err)) {
              retries.delete(dropped);
              runLogger.error('drop folder file failed', { error: describeError(err) });
              return { status: 'failed', report: errorReport(dropped, source.name, runId, startedAt, err) };
            }
            const attempt = (retries.get(dropped) ?? 0) + 1;
            retries.set(dropped, attempt);
            // Files taken out of the folder while they waited for their retry are never offered again.
            for (const waiting of retries.keys()) if (waiting !== dropped && !existsSync(waiting)) retries.delete(waiting);
            const retryInMs = droppedFileRetryMs(attempt);
            const retry = `the file stays in the folder and is tried again in ${Math.round(retryInMs / 1000)} s`;
            if (err instanceof StorageError) {
              monitor.storageFailed(source.name, err);
              runLogger.error('pbxsync cannot use its state folder; fix it (permissions, free space, a read-only mount, a path taken by a folder)', {
                folder: err.folder,
                error: describeError(err),
                attempt,
                retryInMs,
              });
            }
            throw new LeaveFileInPlace(`${describeError(err)}; ${retry}`, { retryInMs, runId });
          }
          monitor.runWorked(source.name);
          if (!result) throw new LeaveFileInPlace('the daemon is stopping; the file stays for the next start', { runId });
          retries.delete(dropped);
          return result;
        },
      });
      closers.unshift(() => watcher.close());
      // The nightly full reconciliation re-applies the file applied last, so drift made by hand in the PBX
      // is corrected even on nights without a new file.
      scheduler.every(`${source.name}:full`, config.schedule.full, async (signal) => {
        await scheduled(source.name, true)(signal);
        await prune();
      });
      continue;
    }
    scheduler.every(`${source.name}:poll`, source.schedule ?? config.schedule.poll, scheduled(source.name, false));
    scheduler.every(`${source.name}:full`, config.schedule.full, scheduled(source.name, true));
  }

  logger.info('pbxsync running', {
    target: config.target.type,
    sources: config.sources.map((s) => s.name),
    status: status.url,
    stateDir: config.stateDir,
  });
  options.onReady?.({ statusUrl: status.url });

  // Listeners stay until the daemon has stopped: with Node's default handler a second SIGTERM (an impatient
  // admin, systemd and a terminal's Ctrl-C together) killed the process in the middle of its checkpoint.
  let signals = 0;
  let stopRequested: (() => void) | undefined;
  const requested = new Promise<void>((resolve) => (stopRequested = resolve));
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++;
    if (signals === 1) {
      stopping = true;
      logger.info('stopping', { signal });
      stopRequested?.();
    } else if (signals === 2) {
      logger.warn('already stopping; finishing the operation in flight and saving the state (a third signal exits at once)', { signal });
    } else {
      logger.error('third signal: exiting at once without finishing; the next start recovers from the journal', { signal });
      process.exit(EXIT.failure);
    }
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  options.stopSignal?.then(() => {
    if (signals === 0) logger.info('stopping', { signal: 'request' });
    signals = Math.max(signals, 1);
    stopping = true;
    stopRequested?.();
  });

  try {
    await requested;
    await scheduler.stop();
    for (const close of closers) await close().catch((err) => logger.warn('close failed', { error: describeError(err) }));
    await engine.state.save();
    await engine.close();
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
  logger.info('stopped');
  return EXIT.ok;
}

/** Applies `csv.keepDays` to a source's processed/ and failed/ folders; a failure is logged, not thrown. */
async function pruneOldFiles(source: string, settings: CsvSourceSettings, logger: Logger, now?: number): Promise<void> {
  try {
    const deleted = await pruneMovedFiles(settings, now);
    if (deleted.length) logger.info('old drop-folder files deleted', { source, keepDays: settings.keepDays, files: deleted.map((f) => path.basename(f)) });
  } catch (err) {
    logger.warn('could not delete old drop-folder files', { source, error: describeError(err) });
  }
}

/** The alerter of `mail.alertsTo`, or undefined when nobody is to be told. */
function createAlerter(config: ServiceConfig, engine: Engine): Alerter | undefined {
  if (config.mail.alertsTo.length === 0) return undefined;
  return new Alerter({
    mailer: createMailer(config.mail, engine.logger),
    to: config.mail.alertsTo,
    logger: engine.logger,
    initial: alertSnapshot(engine.state, config.sources.map((s) => s.name)),
  });
}

/** First wait before a dropped file whose run failed for a passing reason is tried again. */
export const DROPPED_FILE_RETRY_FIRST_MS = 5_000;
/** Longest wait between two tries of such a file. */
export const DROPPED_FILE_RETRY_MAX_MS = 5 * 60_000;

/** The wait before try number `attempt` + 1 of a dropped file: 5 s, doubling, at most 5 minutes. */
export function droppedFileRetryMs(attempt: number): number {
  return Math.min(DROPPED_FILE_RETRY_MAX_MS, DROPPED_FILE_RETRY_FIRST_MS * 2 ** Math.max(0, attempt - 1));
}

/** The report of a dropped file whose run failed for good (it goes to failed/ with the error). */
function errorReport(file: string, source: string, runId: string, startedAt: Date, err: unknown): CsvReport {
  return {
    file,
    source,
    runId,
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    rows: 0,
    applied: 0,
    rejected: [],
    error: describeError(err),
  };
}

async function runScheduled(engine: Engine, monitor: SourceMonitor, source: string, full: boolean, signal: AbortSignal): Promise<void> {
  try {
    const outcome = await runSync(engine, { sources: [source], full, dryRun: false, approve: false, signal });
    // A clean run (exit 0) is in the source's health now, which clears what an earlier dropped file left.
    monitor.runWorked(source);
    if (outcome.exitCode === EXIT.held) engine.logger.warn('scheduled run held', { source, held: outcome.plan.held });
  } catch (err) {
    if (err instanceof StorageError) monitor.storageFailed(source, err);
    engine.logger.error('scheduled run failed', { source, full, error: describeError(err) });
  }
}

function anySignal(...signals: AbortSignal[]): AbortSignal {
  return AbortSignal.any(signals);
}
