import type { LastDroppedFile } from '../state/store.js';
import type { WelcomeUnsure } from '../targets/types.js';
import { sourceFileProblem } from './droppedFile.js';
import type { Engine } from './engine.js';

/** What `pbxsync status` and the daemon's /status page show. Never contains secrets. */
export interface StatusReport {
  target: {
    kind: string;
    users: number | null;
    welcomePending?: number;
    /** Users whose welcome e-mail may or may not have arrived (a process stopped while the mail server had it). */
    welcomeUnsure?: WelcomeUnsure[];
    error?: string;
  };
  managed: number;
  held: { file: string; reason: string; runId: string; at: string } | null;
  sources: Array<{
    name: string;
    type: string;
    mapping: string;
    health?: { at: string; ok: boolean; error?: string; count?: number; exitCode?: number };
    /** CSV sources: the input applied last, which the nightly full run re-applies. */
    lastApplied?: { file: string; runId: string; at: string };
    /** Drop-folder sources: the last file moved to processed/ or failed/. */
    lastFile?: LastDroppedFile;
    /** Why the source is degraded (/healthz 503), when it is. */
    degraded?: string;
  }>;
  runs: Array<{ runId: string; sources: string[]; startedAt: string; finishedAt?: string; exitCode: number; held?: string | null; error?: string; summary?: unknown }>;
}

/** What status shows of the target itself, read without changing it. */
export interface TargetView {
  users: number;
  welcomePending?: number;
  welcomeUnsure?: WelcomeUnsure[];
}

/** Options of {@link collectStatus}. */
export interface CollectStatusOptions {
  /** Read the target (default true); false leaves `users` null. */
  countTargetUsers?: boolean;
  /** Where the target's view comes from instead of a fresh read (the daemon's {@link cachedTargetView}). */
  targetView?: () => Promise<TargetView | undefined>;
}

/** Reads the target's users and welcome e-mail state through a read-only open. */
export async function readTargetView(engine: Engine): Promise<TargetView> {
  const target = await engine.openTarget({ readOnly: true });
  try {
    let users = 0;
    for await (const _ of target.listUsers()) users++;
    const welcomePending = target.pendingWelcomes?.();
    const welcomeUnsure = target.welcomesUnsure?.();
    return { users, ...(welcomePending !== undefined ? { welcomePending } : {}), ...(welcomeUnsure !== undefined ? { welcomeUnsure } : {}) };
  } finally {
    await target.close();
  }
}

/**
 * The target's view for a long-running process (the daemon's status page, polled): read again only once the
 * target changed (Engine.targetRevision), so a poll does not load a large PBX store each time; undefined for a
 * target without a revision (3CX: its users change without pbxsync knowing, and a read is a remote listing).
 */
export function cachedTargetView(engine: Engine): () => Promise<TargetView | undefined> {
  let cached: { revision: string; view: TargetView } | undefined;
  return async () => {
    const revision = await engine.targetRevision();
    if (revision === undefined) return undefined;
    if (cached?.revision !== revision) cached = { revision, view: await readTargetView(engine) };
    return cached.view;
  };
}

/** Collects the status from the state store and a read-only look at the target. */
export async function collectStatus(engine: Engine, options: CollectStatusOptions = {}): Promise<StatusReport> {
  let view: TargetView | undefined;
  let error: string | undefined;
  // The daemon's page must show a CLI run made since its own last run (files are replaced atomically, so a
  // read without the lock sees whole states).
  await engine.state.refresh().catch(() => false);
  if (options.countTargetUsers !== false) {
    try {
      view = await (options.targetView ?? (() => readTargetView(engine)))();
    } catch (err) {
      error = err instanceof Error ? err.message : String(err);
    }
  }
  return {
    target: { kind: engine.config.target.type, users: null, ...view, ...(error ? { error } : {}) },
    managed: engine.state.managedCount,
    held: engine.state.held() ?? null,
    sources: engine.config.sources.map((s) => {
      const applied = engine.state.lastApplied(s.name);
      const lastFile = engine.state.lastDroppedFile(s.name);
      const degraded = sourceFileProblem(engine, s.name);
      return {
        name: s.name,
        type: s.type,
        mapping: s.mapping,
        health: engine.state.sourceHealth(s.name),
        ...(applied ? { lastApplied: { file: applied.file, runId: applied.runId, at: applied.at } } : {}),
        ...(lastFile ? { lastFile } : {}),
        ...(degraded ? { degraded } : {}),
      };
    }),
    runs: engine.state.runs().slice(0, 20),
  };
}
