/**
 * What the daemon knows about its sources beyond the state: whether runs fail because pbxsync cannot use its own
 * files (which cannot be saved to those same files, so it lives in memory), and the metrics of dropped files.
 * The last file each drop folder took is kept in the state (see engine/droppedFile.ts). /status, /healthz and
 * /metrics show both.
 */
import path from 'node:path';
import type { CsvReport } from '../../connectors/csv/report.js';
import type { StorageError } from '../errors/index.js';
import { redact } from '../log.js';
import type { LastDroppedFile } from '../state/store.js';
import type { Metrics } from './metrics.js';

export type { LastDroppedFile } from '../state/store.js';

/** Runs of a source failing because pbxsync cannot read or write its own files. */
export interface StorageFailure {
  folder: string;
  error: string;
  /** First and latest failure (ISO 8601). */
  since: string;
  last: string;
  /** Failed tries since the last run that worked. */
  failures: number;
}

/** What the monitor adds to a source's entry in the /status document's `sources[]`. */
export interface MonitoredSource {
  storage?: StorageFailure;
  /** Why /healthz names the source, when it does: its storage, else its last dropped file. */
  degraded?: string;
}

/** Options of {@link SourceMonitor}. */
export interface SourceMonitorOptions {
  metrics?: Metrics;
  /** Why the last dropped file of a source degrades it, from the state (engine/droppedFile.ts sourceFileProblem). */
  fileProblem?: (source: string) => string | undefined;
}

/** The record of a dropped file the watcher moved, as the state keeps it (secrets masked, like the report). */
export function droppedFileRecord(report: CsvReport, status: 'processed' | 'failed', movedTo: string): LastDroppedFile {
  const failed = report.failed ?? 0;
  return {
    name: path.basename(report.file),
    ...(report.runId ? { runId: report.runId } : {}),
    at: report.finishedAt,
    status,
    movedTo,
    rows: report.rows,
    applied: report.applied,
    // Rows only: a problem with the whole file (empty, no usable header, a held plan) is the file's status, not a row.
    rejected: report.rejected.filter((r) => r.line > 0 && (r.kind === 'rejected' || r.kind === 'conflict')).length,
    failed,
    ...(report.held !== undefined ? { held: typeof report.held === 'string' ? redact(report.held) : report.held } : {}),
    ...(report.error ? { error: redact(report.error) } : {}),
  };
}

/**
 * Per source: storage failures, and from them and the last dropped file whether the source is degraded.
 *
 * A source is degraded (/healthz 503, `pbxsync_source_degraded` 1) while its runs fail because pbxsync cannot
 * use its own files (until a run works again), and while its last dropped file leaves it so (see
 * engine/droppedFile.ts droppedFileProblem: a file that went to `failed/` or whose operations partly failed,
 * until a clean run of the source follows). The storage reason goes first: it is what to fix.
 */
export class SourceMonitor {
  private readonly storage = new Map<string, StorageFailure>();

  constructor(private readonly options: SourceMonitorOptions = {}) {}

  /** A dropped file was moved (the watcher's report and destination): counted; returns its record for the state. */
  fileMoved(source: string, report: CsvReport, status: 'processed' | 'failed', movedTo: string): LastDroppedFile {
    const file = droppedFileRecord(report, status, movedTo);
    const metrics = this.options.metrics;
    metrics?.droppedFiles.inc({ source, status });
    if (file.rejected) metrics?.rejectedRows.inc({ source }, file.rejected);
    if (file.failed) metrics?.failedOperations.inc({ source }, file.failed);
    return file;
  }

  /** A run of `source` failed because pbxsync cannot use its own files. */
  storageFailed(source: string, err: StorageError): void {
    const before = this.storage.get(source);
    const now = new Date().toISOString();
    this.storage.set(source, {
      folder: err.folder,
      error: err.message,
      since: before?.since ?? now,
      last: now,
      failures: (before?.failures ?? 0) + 1,
    });
    this.options.metrics?.storageFailures.inc({ source });
    this.update(source);
  }

  /** A run of `source` got through (whatever its outcome): its storage works again. */
  runWorked(source: string): void {
    this.storage.delete(source);
    this.update(source);
  }

  /** What /status adds to `source`'s entry. */
  status(source: string): MonitoredSource {
    const storage = this.storage.get(source);
    const degraded = this.reason(source);
    return { ...(storage ? { storage } : {}), ...(degraded ? { degraded } : {}) };
  }

  /** Sets `pbxsync_source_degraded` of `source` from what is known now (the state may have changed). */
  update(source: string): void {
    this.options.metrics?.sourceDegraded.set({ source }, this.reason(source) ? 1 : 0);
  }

  private reason(source: string): string | undefined {
    const s = this.storage.get(source);
    if (s) {
      return `runs fail since ${s.since} (${s.failures} tries): ${s.error}; fix the folder (permissions, free space); dropped files wait in the drop folder and are retried`;
    }
    return this.options.fileProblem?.(source);
  }
}
