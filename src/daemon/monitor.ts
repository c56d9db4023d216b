/**
 * What the daemon knows about its sources beyond the recorded runs: the last file each drop folder took, and
 * whether runs fail because pbxsync cannot use its own files. /status, /healthz and /metrics show it.
 */
import path from 'node:path';
import type { CsvReport } from '../../connectors/csv/report.js';
import type { StorageError } from '../errors/index.js';
import type { Metrics } from './metrics.js';

/** The last file a drop-folder source took, as /status shows it. */
export interface LastDroppedFile {
  /** The file's name as dropped. */
  name: string;
  runId?: string;
  /** When its run finished (ISO 8601). */
  at: string;
  status: 'processed' | 'failed';
  /** Where it was moved (with its report beside it). */
  movedTo: string;
  rows: number;
  /** Operations applied. */
  applied: number;
  /** Rows rejected (bad input, conflicts), failed operations not counted. */
  rejected: number;
  /** Operations that failed. */
  failed: number;
  held?: string | null;
  error?: string;
}

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

/** A source's entry in the monitor, merged into the /status document's `sources[]`. */
export interface MonitoredSource {
  lastFile?: LastDroppedFile;
  storage?: StorageFailure;
  /** Why /healthz names the source, when it does. */
  degraded?: string;
}

/**
 * Per source: the last dropped file and storage failures, and from them whether the source is degraded.
 *
 * A source is degraded (/healthz 503, `pbxsync_source_degraded` 1) while its runs fail because pbxsync cannot
 * use its own files (until a run works again), and after a dropped file that went to `failed/` or whose
 * operations partly failed (until a later file of the source is processed without failed operations, or a
 * scheduled run ends with exit 0). Rejected rows alone are shown and counted, but do not degrade it: the rest
 * of the file applied, and the report lists them.
 */
export class SourceMonitor {
  private readonly sources = new Map<string, { lastFile?: LastDroppedFile; storage?: StorageFailure; fileProblem?: string }>();

  constructor(private readonly metrics?: Metrics) {}

  /** A dropped file was moved (the watcher's report and destination). */
  fileMoved(source: string, report: CsvReport, status: 'processed' | 'failed', movedTo: string): void {
    const failed = report.failed ?? 0;
    const rejected = Math.max(0, report.rejected.length - failed);
    const name = path.basename(report.file);
    const entry = this.entry(source);
    entry.lastFile = {
      name,
      ...(report.runId ? { runId: report.runId } : {}),
      at: report.finishedAt,
      status,
      movedTo,
      rows: report.rows,
      applied: report.applied,
      rejected,
      failed,
      ...(report.held !== undefined ? { held: report.held } : {}),
      ...(report.error ? { error: report.error } : {}),
    };
    if (status === 'failed') {
      const why = report.held ? `plan held: ${report.held}` : report.error ?? 'nothing in it could be applied';
      entry.fileProblem = `last file ${name} went to failed/ (${why})`;
    } else if (failed > 0) {
      entry.fileProblem = `last file ${name}: ${failed} operation${failed === 1 ? '' : 's'} failed (see ${movedTo})`;
    } else {
      entry.fileProblem = undefined;
    }
    this.metrics?.droppedFiles.inc({ source, status });
    if (rejected) this.metrics?.rejectedRows.inc({ source }, rejected);
    if (failed) this.metrics?.failedOperations.inc({ source }, failed);
    this.update(source);
  }

  /** A run of `source` failed because pbxsync cannot use its own files. */
  storageFailed(source: string, err: StorageError): void {
    const entry = this.entry(source);
    const now = new Date().toISOString();
    entry.storage = {
      folder: err.folder,
      error: err.message,
      since: entry.storage?.since ?? now,
      last: now,
      failures: (entry.storage?.failures ?? 0) + 1,
    };
    this.metrics?.storageFailures.inc({ source });
    this.update(source);
  }

  /** A run of `source` got through (whatever its outcome): its storage works again. */
  runWorked(source: string): void {
    const entry = this.entry(source);
    entry.storage = undefined;
    this.update(source);
  }

  /** A scheduled run of `source` ended with exit 0: what an earlier file left undone is no longer current. */
  runSucceeded(source: string): void {
    const entry = this.entry(source);
    entry.storage = undefined;
    entry.fileProblem = undefined;
    this.update(source);
  }

  /** What /status shows of `source`. */
  status(source: string): MonitoredSource {
    const entry = this.sources.get(source);
    if (!entry) return {};
    const degraded = this.reason(source);
    return {
      ...(entry.lastFile ? { lastFile: entry.lastFile } : {}),
      ...(entry.storage ? { storage: entry.storage } : {}),
      ...(degraded ? { degraded } : {}),
    };
  }

  /** One line per degraded source, for /healthz. */
  reasons(): string[] {
    return [...this.sources.keys()].sort().flatMap((s) => {
      const r = this.reason(s);
      return r ? [`source ${s}: ${r}`] : [];
    });
  }

  private reason(source: string): string | undefined {
    const entry = this.sources.get(source);
    if (entry?.storage) {
      const s = entry.storage;
      return `runs fail since ${s.since} (${s.failures} tries): ${s.error}; fix the folder (permissions, free space); dropped files wait in the drop folder and are retried`;
    }
    return entry?.fileProblem;
  }

  private entry(source: string) {
    let entry = this.sources.get(source);
    if (!entry) this.sources.set(source, (entry = {}));
    return entry;
  }

  private update(source: string): void {
    this.metrics?.sourceDegraded.set({ source }, this.reason(source) ? 1 : 0);
  }
}
