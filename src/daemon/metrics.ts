import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** The daemon's Prometheus metrics, all in one registry (so tests and several engines never collide). */
export interface Metrics {
  registry: Registry;
  /** `pbxsync_runs_total{source,result}`: reconciliation runs; result is the exit code or `failed`. */
  runs: Counter<'source' | 'result'>;
  /** `pbxsync_operations_total{kind,result}`: plan operations applied or failed. */
  operations: Counter<'kind' | 'result'>;
  /** `pbxsync_run_duration_seconds{source}`: wall time of a run. */
  runDuration: Histogram<'source'>;
  /** `pbxsync_last_success_timestamp_seconds{source}`: unix time of the last run that applied. */
  lastSuccess: Gauge<'source'>;
  /** `pbxsync_managed_users`: PBX users bound to an identity. */
  managedUsers: Gauge;
  /** `pbxsync_held_plans`: plans waiting for approval (alert on > 0). */
  heldPlans: Gauge;
  /** `pbxsync_source_identities{source}`: identities the last read returned. */
  sourceIdentities: Gauge<'source'>;
  /** `pbxsync_dropped_files_total{source,status}`: dropped files moved to processed/ or failed/. */
  droppedFiles: Counter<'source' | 'status'>;
  /** `pbxsync_rejected_rows_total{source}`: rows of dropped files rejected (bad input, conflicts). */
  rejectedRows: Counter<'source'>;
  /** `pbxsync_failed_operations_total{source}`: operations of dropped files the target refused or that failed. */
  failedOperations: Counter<'source'>;
  /** `pbxsync_storage_failures_total{source}`: runs that failed because pbxsync could not use its own files. */
  storageFailures: Counter<'source'>;
  /** `pbxsync_source_degraded{source}`: 1 while /healthz names the source (see SourceMonitor), else 0. */
  sourceDegraded: Gauge<'source'>;
}

/** Prefix of every pbxsync metric. */
export const METRIC_PREFIX = 'pbxsync_';

/** Options of {@link createMetrics}. */
export interface MetricsOptions {
  /** Managed users now (the state as on disk), read at each scrape for `pbxsync_managed_users`. */
  managedUsers?: () => number | Promise<number>;
}

/**
 * Creates a fresh registry with the pbxsync metrics and Node's default process metrics
 * (`pbxsync_process_cpu_seconds_total`, heap, event loop lag, ...).
 */
export function createMetrics(options: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });
  const registers = [registry];
  return {
    registry,
    runs: new Counter({
      name: `${METRIC_PREFIX}runs_total`,
      help: 'Reconciliation runs by source and result (exit code, or failed).',
      labelNames: ['source', 'result'] as const,
      registers,
    }),
    operations: new Counter({
      name: `${METRIC_PREFIX}operations_total`,
      help: 'Plan operations by kind and result (applied, failed).',
      labelNames: ['kind', 'result'] as const,
      registers,
    }),
    runDuration: new Histogram({
      name: `${METRIC_PREFIX}run_duration_seconds`,
      help: 'Duration of reconciliation runs by source.',
      labelNames: ['source'] as const,
      // Runs range from a sub-second CSV upsert to a long full read of a large directory.
      buckets: [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800],
      registers,
    }),
    lastSuccess: new Gauge({
      name: `${METRIC_PREFIX}last_success_timestamp_seconds`,
      help: 'Unix time of the last successful run by source.',
      labelNames: ['source'] as const,
      registers,
    }),
    managedUsers: new Gauge({
      name: `${METRIC_PREFIX}managed_users`,
      help: 'PBX users managed by pbxsync (bound to an identity).',
      registers,
      // Read at each scrape: a CLI import next to the daemon changes it between the daemon's own runs.
      ...(options.managedUsers
        ? {
            async collect(this: Gauge) {
              this.set(await options.managedUsers!());
            },
          }
        : {}),
    }),
    heldPlans: new Gauge({
      name: `${METRIC_PREFIX}held_plans`,
      help: 'Plans held by a safety guard and waiting for approval.',
      registers,
    }),
    sourceIdentities: new Gauge({
      name: `${METRIC_PREFIX}source_identities`,
      help: 'Identities returned by the last read of each source.',
      labelNames: ['source'] as const,
      registers,
    }),
    droppedFiles: new Counter({
      name: `${METRIC_PREFIX}dropped_files_total`,
      help: 'Dropped files moved by source and status (processed, failed).',
      labelNames: ['source', 'status'] as const,
      registers,
    }),
    rejectedRows: new Counter({
      name: `${METRIC_PREFIX}rejected_rows_total`,
      help: 'Rows of dropped files rejected (bad input, conflicts) by source.',
      labelNames: ['source'] as const,
      registers,
    }),
    failedOperations: new Counter({
      name: `${METRIC_PREFIX}failed_operations_total`,
      help: 'Operations of dropped files that failed by source.',
      labelNames: ['source'] as const,
      registers,
    }),
    storageFailures: new Counter({
      name: `${METRIC_PREFIX}storage_failures_total`,
      help: 'Runs that failed because pbxsync could not read or write its state folder or PBX store, by source.',
      labelNames: ['source'] as const,
      registers,
    }),
    sourceDegraded: new Gauge({
      name: `${METRIC_PREFIX}source_degraded`,
      help: '1 while /healthz reports the source (storage failing, last file failed), else 0.',
      labelNames: ['source'] as const,
      registers,
    }),
  };
}
