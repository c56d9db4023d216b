import path from 'node:path';
import type { ServiceConfig } from '../config/types.js';
import type { Logger } from '../log.js';
import type { Mapping } from '../mapping/types.js';
import type { Source } from '../model/index.js';
import type { Target } from '../targets/types.js';
import { MappingFile } from '../mapping/load.js';
import { createSource } from '../sources.js';
import { EmbeddedTarget } from '../targets/embedded/target.js';
import { storeRevision } from '../targets/embedded/store.js';
import { StateStore } from '../state/store.js';
import { Journal } from '../reconcile/journal.js';
import { AuditLog } from '../reconcile/audit.js';
import { UsageError } from '../errors/index.js';
import type { Metrics } from '../daemon/metrics.js';

/**
 * Everything one pbxsync process works with, built once from service.yml by `createEngine` (the single
 * composition root). Per-run state is never kept here; a run gets its own id and child logger.
 */
export interface Engine {
  readonly config: ServiceConfig;
  readonly logger: Logger;
  readonly state: StateStore;
  readonly journal: Journal;
  /** `<stateDir>/audit/`: every change made, with its source record and mapping rule. */
  readonly audit: AuditLog;
  readonly metrics?: Metrics;
  /** The configured sources by name. */
  readonly sources: Map<string, Source>;
  /**
   * The compiled mapping of a source, as its file is now: compiled once and again whenever the file's text
   * changes (a long-running daemon picks up an edit at its next run).
   * @throws ConfigError when the file cannot be read or does not compile.
   */
  mapping(sourceName: string): Promise<Mapping>;
  /**
   * Opens the target. `readOnly` opens the embedded store without taking its lock (export, status, plan);
   * `signal` (the daemon stopping) stops its welcome e-mails (see EmbeddedTargetOptions.signal).
   */
  openTarget(options?: { readOnly?: boolean; signal?: AbortSignal }): Promise<Target>;
  /**
   * A token that changes whenever the target's users change, read without opening it; undefined when the
   * target has none (3CX: users change there without pbxsync knowing).
   */
  targetRevision(): Promise<string | undefined>;
  close(): Promise<void>;
}

/** Options of createEngine. */
export interface EngineOptions {
  logger: Logger;
  metrics?: Metrics;
}

/** The composition root: builds sources, state, journal and the target factory from the configuration. */
export async function createEngine(config: ServiceConfig, options: EngineOptions): Promise<Engine> {
  const state = await StateStore.open(config.stateDir);
  const journal = new Journal({ file: path.join(config.stateDir, 'journal.jsonl') });
  const sources = new Map<string, Source>();
  for (const s of config.sources) sources.set(s.name, createSource(s));
  const mappings = new Map<string, MappingFile>();
  for (const s of config.sources) mappings.set(s.name, new MappingFile(s.mapping, { numbering: config.numbering, removal: config.safety.removal }));

  return {
    config,
    logger: options.logger,
    metrics: options.metrics,
    state,
    journal,
    audit: new AuditLog(path.join(config.stateDir, 'audit')),
    sources,
    async mapping(sourceName) {
      const file = mappings.get(sourceName);
      if (!file) throw new UsageError(`no source named "${sourceName}" in ${config.file}`);
      const { mapping, changed } = await file.current();
      if (changed) options.logger.info('mapping file changed; the new version applies from this run', { source: sourceName, file: file.file });
      return mapping;
    },
    async openTarget(openOptions) {
      const t = config.target;
      if (t.type === 'embedded') {
        return EmbeddedTarget.fromConfig(t, {
          numbering: config.numbering,
          mail: config.mail,
          logger: options.logger,
          webClientUrl: config.provisioning.publicUrl,
          readOnly: openOptions?.readOnly,
          signal: openOptions?.signal,
        });
      }
      // Loaded on first use: the 3CX client (axios and its agents) costs ~0.1 s at every start otherwise.
      const { ThreeCxTarget } = await import('../targets/threecx/target.js');
      return ThreeCxTarget.fromConfig(t, { logger: options.logger });
    },
    async targetRevision() {
      return config.target.type === 'embedded' ? storeRevision(config.target.storeFile) : undefined;
    },
    async close() {
      await journal.close();
      for (const s of sources.values()) await s.close?.();
    },
  };
}
