import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { Low } from 'lowdb';
import { DataFile } from 'lowdb/node';
import { keyString, type IdentityKey } from '../model/index.js';
import type { Binding, PendingCreate, PlanState, PlanSummary } from '../reconcile/types.js';

/** One finished (or failed) run, for `pbxsync status`. */
export interface RunRecord {
  runId: string;
  sources: string[];
  startedAt: string;
  finishedAt?: string;
  summary?: PlanSummary;
  held: string | null;
  /** DESIGN §3 exit code of the run. */
  exitCode: number;
  error?: string;
}

/** A plan a guard held, saved for approval (`pbxsync apply <file>`). */
export interface HeldPlan {
  /** `<stateDir>/plans/<runId>.json`. */
  file: string;
  reason: string;
  runId: string;
  at: string;
}

/** The outcome of one run for one source. */
export interface SourceCheck {
  at: string;
  ok: boolean;
  error?: string;
  /** Identities read. */
  count?: number;
}

/** How the last reads of a source went. */
export interface SourceHealth {
  lastSuccess?: string;
  lastFailure?: string;
  lastError?: string;
  /** The latest outcome, whatever it was. */
  last?: SourceCheck;
}

/** The JSON document in `<stateDir>/state.json`. */
export interface StateData {
  version: 1;
  bindings: Binding[];
  cursors: Record<string, string>;
  lastGoodCount: Record<string, number>;
  runs: RunRecord[];
  heldPlans: HeldPlan[];
  sourceHealth: Record<string, SourceHealth>;
}

/** Runs kept in the history. */
export const MAX_RUNS = 100;

/** File name of the state document inside the state folder. */
export const STATE_FILE = 'state.json';

/**
 * A copy of a binding with its own key object; `disabledAt` null drops it, undefined keeps the binding's.
 * WARNING: spelled out rather than `{ ...b, key }`: V8 gives many such spread copies a hidden class of
 * their own (~0.5 KB each), and the store holds one binding per managed user.
 */
function copyBinding(b: Binding, disabledAt?: string | null): Binding {
  const out: Binding = { key: { source: b.key.source, anchor: b.key.anchor }, userId: b.userId, extension: b.extension, boundAt: b.boundAt };
  const at = disabledAt === undefined ? b.disabledAt : disabledAt ?? undefined;
  if (at !== undefined) out.disabledAt = at;
  return out;
}

function emptyState(): StateData {
  return { version: 1, bindings: [], cursors: {}, lastGoodCount: {}, runs: [], heldPlans: [], sourceHealth: {} };
}

/**
 * pbxsync's memory between runs: bindings (identity ↔ PBX user, indexed by key and by user id), source
 * cursors, last good read sizes, run history, held plans and source health. Backed by lowdb, whose writer
 * writes a temp file and renames it, so a crash never leaves a half-written state file.
 *
 * Changes are made in memory and become durable on {@link save}; apply saves at each checkpoint.
 */
export class StateStore {
  private readonly byKey = new Map<string, Binding>();
  private readonly byUserId = new Map<string, Binding>();

  private constructor(
    /** Absolute path of `state.json`. */
    readonly file: string,
    private readonly db: Low<StateData>,
  ) {
    for (const b of db.data.bindings) this.index(b);
  }

  /** Opens `<stateDir>/state.json`, starting empty when it does not exist. */
  static async open(stateDir: string): Promise<StateStore> {
    await mkdir(stateDir, { recursive: true });
    const file = path.join(stateDir, STATE_FILE);
    // Compact JSON: the file is rewritten at every checkpoint and may hold 100,000 bindings.
    const adapter = new DataFile<StateData>(file, { parse: JSON.parse, stringify: (d) => JSON.stringify(d) });
    const db = new Low<StateData>(adapter, emptyState());
    await db.read();
    db.data = { ...emptyState(), ...(db.data ?? {}) };
    return new StateStore(file, db);
  }

  private index(b: Binding): void {
    this.byKey.set(keyString(b.key), b);
    this.byUserId.set(b.userId, b);
  }

  /** All bindings, sorted by key. */
  bindings(): Binding[] {
    return [...this.byKey.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, b]) => b);
  }

  /** The binding of an identity. */
  binding(key: IdentityKey): Binding | undefined {
    return this.byKey.get(keyString(key));
  }

  /** The binding of a PBX user. */
  bindingByUserId(userId: string): Binding | undefined {
    return this.byUserId.get(userId);
  }

  /** Number of bindings (users pbxsync manages). */
  get managedCount(): number {
    return this.byKey.size;
  }

  /** Adds or replaces the binding of `binding.key` (a re-created user replaces its old binding). */
  putBinding(binding: Binding): void {
    const old = this.byKey.get(keyString(binding.key));
    if (old) this.byUserId.delete(old.userId);
    const previousOwner = this.byUserId.get(binding.userId);
    if (previousOwner) this.byKey.delete(keyString(previousOwner.key));
    this.index(copyBinding(binding));
  }

  /** Forgets the binding of an identity (its user was deleted). */
  removeBinding(key: IdentityKey): void {
    const b = this.byKey.get(keyString(key));
    if (!b) return;
    this.byKey.delete(keyString(key));
    this.byUserId.delete(b.userId);
  }

  /** Sets (disabled by pbxsync) or clears (enabled again) the disabledAt of a binding. */
  setDisabledAt(key: IdentityKey, at: string | undefined): void {
    const b = this.byKey.get(keyString(key));
    if (!b) return;
    this.index(copyBinding(b, at === undefined ? null : at));
  }

  /** The cursor saved for a source. */
  cursor(source: string): string | undefined {
    return this.db.data.cursors[source];
  }

  /** Same as {@link cursor}. */
  getCursor(source: string): string | undefined {
    return this.cursor(source);
  }

  /** Saves a source's cursor; apply calls it only once the source's operations were applied. */
  setCursor(source: string, cursor: string | undefined): void {
    if (cursor === undefined) delete this.db.data.cursors[source];
    else this.db.data.cursors[source] = cursor;
  }

  /** Identities read by the last complete full read of each source. */
  lastGoodCounts(): Record<string, number> {
    return { ...this.db.data.lastGoodCount };
  }

  /** Records the size of a complete full read whose operations were applied. */
  setLastGoodCount(source: string, count: number): void {
    this.db.data.lastGoodCount[source] = count;
  }

  /** Run history, newest first. */
  runs(): RunRecord[] {
    return [...this.db.data.runs].reverse();
  }

  /** Adds or replaces (same runId) a run record; only the last {@link MAX_RUNS} are kept. */
  recordRun(run: RunRecord): void {
    const runs = this.db.data.runs.filter((r) => r.runId !== run.runId);
    runs.push(run);
    this.db.data.runs = runs.slice(-MAX_RUNS);
  }

  /** Plans waiting for approval. */
  heldPlans(): HeldPlan[] {
    return [...this.db.data.heldPlans];
  }

  /** Remembers a held plan (the CLI wrote it to `<stateDir>/plans/<runId>.json`). */
  addHeldPlan(plan: HeldPlan): void {
    this.db.data.heldPlans = [...this.db.data.heldPlans.filter((p) => p.runId !== plan.runId), plan];
  }

  /** Forgets a held plan (applied or superseded). */
  removeHeldPlan(runId: string): void {
    this.db.data.heldPlans = this.db.data.heldPlans.filter((p) => p.runId !== runId);
  }

  /** The latest held plan, if any. */
  held(): HeldPlan | undefined {
    return this.db.data.heldPlans.at(-1);
  }

  /** Same as {@link addHeldPlan}. */
  setHeld(plan: HeldPlan): void {
    this.addHeldPlan(plan);
  }

  /** Forgets one held plan (by run id) or all of them (an approved apply supersedes them). */
  clearHeld(runId?: string): void {
    if (runId === undefined) this.db.data.heldPlans = [];
    else this.removeHeldPlan(runId);
  }

  /** Health of every source; with a name, that source's latest outcome. */
  sourceHealth(): Record<string, SourceHealth>;
  sourceHealth(source: string): SourceCheck | undefined;
  sourceHealth(source?: string): Record<string, SourceHealth> | SourceCheck | undefined {
    if (source !== undefined) {
      const last = this.db.data.sourceHealth[source]?.last;
      return last ? { ...last } : undefined;
    }
    return structuredClone(this.db.data.sourceHealth);
  }

  /** Records the outcome of a run for a source (success and failure dates follow from `ok`). */
  setSourceHealth(source: string, check: SourceCheck): void {
    const prev = this.db.data.sourceHealth[source] ?? {};
    this.db.data.sourceHealth[source] = check.ok
      ? { ...prev, lastSuccess: check.at, last: { ...check } }
      : { ...prev, lastFailure: check.at, lastError: check.error ?? prev.lastError, last: { ...check } };
  }

  /** Records a successful read of a source. */
  recordSourceSuccess(source: string, at: string): void {
    this.db.data.sourceHealth[source] = { ...this.db.data.sourceHealth[source], lastSuccess: at };
  }

  /** Records a failed read of a source with its (already redacted) error message. */
  recordSourceFailure(source: string, at: string, message: string): void {
    this.db.data.sourceHealth[source] = { ...this.db.data.sourceHealth[source], lastFailure: at, lastError: message };
  }

  /** The planner's view of the state. */
  planState(now: Date, pendingCreates: PendingCreate[] = []): PlanState {
    return { bindings: this.bindings(), lastGoodCount: this.lastGoodCounts(), now, pendingCreates };
  }

  /** Writes the state atomically (temp file + rename). */
  async save(): Promise<void> {
    // Insertion order, not sorted: apply saves at every checkpoint and sorting 100,000 keys each time costs
    // more than the write.
    this.db.data.bindings = [...this.byKey.values()];
    await this.db.write();
  }
}
