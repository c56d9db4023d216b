import type { Engine } from './engine.js';

/** What `pbxsync status` and the daemon's /status page show. Never contains secrets. */
export interface StatusReport {
  target: { kind: string; users: number | null; welcomePending?: number; error?: string };
  managed: number;
  held: { file: string; reason: string; runId: string; at: string } | null;
  sources: Array<{
    name: string;
    type: string;
    mapping: string;
    health?: { at: string; ok: boolean; error?: string; count?: number };
    /** CSV sources: the input applied last, which the nightly full run re-applies. */
    lastApplied?: { file: string; runId: string; at: string };
  }>;
  runs: Array<{ runId: string; sources: string[]; startedAt: string; finishedAt?: string; exitCode: number; held?: string | null; error?: string; summary?: unknown }>;
}

/** Collects the status from the state store and a read-only look at the target. */
export async function collectStatus(engine: Engine, options: { countTargetUsers?: boolean } = {}): Promise<StatusReport> {
  let users: number | null = null;
  let welcomePending: number | undefined;
  let error: string | undefined;
  // The daemon's page must show a CLI run made since its own last run (files are replaced atomically, so a
  // read without the lock sees whole states).
  await engine.state.refresh().catch(() => false);
  if (options.countTargetUsers !== false) {
    try {
      const target = await engine.openTarget({ readOnly: true });
      try {
        users = 0;
        for await (const _ of target.listUsers()) users++;
        welcomePending = target.pendingWelcomes?.();
      } finally {
        await target.close();
      }
    } catch (err) {
      error = err instanceof Error ? err.message : String(err);
    }
  }
  return {
    target: { kind: engine.config.target.type, users, ...(welcomePending !== undefined ? { welcomePending } : {}), ...(error ? { error } : {}) },
    managed: engine.state.managedCount,
    held: engine.state.held() ?? null,
    sources: engine.config.sources.map((s) => {
      const applied = engine.state.lastApplied(s.name);
      return {
        name: s.name,
        type: s.type,
        mapping: s.mapping,
        health: engine.state.sourceHealth(s.name),
        ...(applied ? { lastApplied: { file: applied.file, runId: applied.runId, at: applied.at } } : {}),
      };
    }),
    runs: engine.state.runs().slice(0, 20),
  };
}
