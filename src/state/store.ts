import { stat } from 'node:fs/promises';
import path from 'node:path';
import { Low } from 'lowdb';
import { DataFile } from 'lowdb/node';
import { keyString, type IdentityKey } from '../model/index.js';
import { rewriteDue } from '../util/compaction.js';
import type { Binding, PendingCreate, PlanState, PlanSummary } from '../reconcile/types.js';
import { ensureStateFolder, stateFolderError } from './folder.js';
import { BINDINGS_FILE, BINDINGS_LOG_FILE, appendBatch, logHeader, readBindings, serializeBatch, writeSnapshot, type KnownFiles, type LogEntry } from './bindings-file.js';

export { BINDINGS_FILE, BINDINGS_LOG_FILE } from './bindings-file.js';

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
  /** The sources the held run read (absent in state files written before it existed). */
  sources?: string[];
  /** The plan's basis (Plan.basis): the same inputs and PBX give the same one. */
  basis?: string;
}

/** The outcome of one run for one source. */
export interface SourceCheck {
  at: string;
  ok: boolean;
  error?: string;
  /** Identities read. */
  count?: number;
  /** DESIGN §3 exit code of the run (absent in state files written before it existed). */
  exitCode?: number;
}

/** How the last reads of a source went. */
export interface SourceHealth {
  lastSuccess?: string;
  lastFailure?: string;
  lastError?: string;
  /** The latest outcome, whatever it was. */
  last?: SourceCheck;
  /**
   * When a run of the source last ended with exit 0 having read something of it (absent in state files written
   * before it existed). A clean run since a dropped file that failed means that file's trouble is no longer
   * current (see engine/droppedFile.ts); a CSV source's run without a file changes nothing, so it does not count.
   */
  lastClean?: string;
}

/**
 * The last file a drop-folder source took, once it was moved to processed/ or failed/ (`pbxsync status`, the
 * daemon's /status). Kept in the state so the CLI and the daemon show the same, also after a restart.
 */
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

/**
 * An input a source applied completely, remembered so the same input again can be recognised without
 * reading it (see engine/unchanged.ts). Valid only while the PBX store and the bindings are exactly as the
 * run that recorded it left them.
 */
export interface ConvergedInput {
  /** SHA-256 over the input file, the mapping text in use, the configuration and the pbxsync version. */
  fingerprint: string;
  /** The target's revision right after that run (Engine.targetRevision). */
  targetRevision: string;
  /** The bindings' revision right after that run (StateStore.bindingsRevision). */
  bindingsRevision: string;
  runId: string;
  at: string;
  /** What the read of that input gave: replayed as the skipped run's read. */
  mode: 'full' | 'partial' | 'delta';
  count: number;
  /** Users mapped in scope (the skipped run reports them unchanged). */
  desired: number;
}

/**
 * The input a CSV source applied last (drop folder, `import`, an approved plan), whose copy the nightly full
 * reconciliation re-reads (see engine/lastApplied.ts).
 */
export interface LastAppliedInput {
  /** The file as the run named it (the drop-folder path, the admin's file, a held plan's copy). */
  file: string;
  /** SHA-256 of its bytes, as copied. */
  sha256: string;
  /** Its size in bytes. */
  size: number;
  /** The run that applied it. */
  runId: string;
  at: string;
}

/**
 * The state as one document. On disk the bindings live apart from the rest (see {@link StateStore}):
 * `state.json` holds everything but them; a `state.json` from before that still has them here, and they are
 * read once and moved to `bindings.json` by the next save.
 */
export interface StateData {
  version: 1;
  bindings: Binding[];
  cursors: Record<string, string>;
  lastGoodCount: Record<string, number>;
  runs: RunRecord[];
  heldPlans: HeldPlan[];
  sourceHealth: Record<string, SourceHealth>;
  /** Per source: the last input applied completely (absent in state files written before it existed). */
  converged?: Record<string, ConvergedInput>;
  /** Per CSV source: the input it applied last (absent in state files written before it existed). */
  lastApplied?: Record<string, LastAppliedInput>;
  /** Per drop-folder source: the last file moved to processed/ or failed/ (absent in state files written before it existed). */
  lastDroppedFile?: Record<string, LastDroppedFile>;
}

/** Runs kept in the history. */
export const MAX_RUNS = 100;

/** File name of the state document inside the state folder. */
export const STATE_FILE = 'state.json';

/** What `state.json` holds now: all but the bindings (which an old file may still have). */
type StateFileData = Omit<StateData, 'bindings'> & { bindings?: Binding[] };

/**
 * The log is folded into a new snapshot once half of what a load reads is superseded (rewriteDue), but not
 * below this log size. A log of new bindings is all live data and is never folded: the earlier rule "fold when
 * the log outgrows the snapshot" rewrote a growing snapshot about log2(n) times over a 100,000-user import.
 */
export const MIN_FOLD_BYTES = 1 << 20;

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

/** What {@link StateStore.load} read. */
interface Loaded {
  db: Low<StateFileData>;
  known: KnownFiles;
  stateDirty: boolean;
  /** There is no `state.json` yet. */
  stateMissing: boolean;
  foldNeeded: boolean;
  bindings: Binding[];
  entries: LogEntry[];
}

/** Inode, size and change time of the state's files: differs once any of them was written. */
async function filesStamp(dir: string): Promise<string> {
  const parts: string[] = [];
  for (const name of [STATE_FILE, BINDINGS_FILE, BINDINGS_LOG_FILE]) {
    const st = await stat(path.join(dir, name), { bigint: true }).catch(() => undefined);
    parts.push(st ? `${st.ino}.${st.size}.${st.mtimeNs}` : '-');
  }
  return parts.join('/');
}

function emptyState(): StateFileData {
  return { version: 1, cursors: {}, lastGoodCount: {}, runs: [], heldPlans: [], sourceHealth: {} };
}

/**
 * pbxsync's memory between runs: bindings (identity ↔ PBX user, indexed by key and by user id), source
 * cursors, last good read sizes, run history, held plans, source health and each drop folder's last file.
 *
 * Changes are made in memory and become durable on {@link save}; apply saves at each checkpoint. On disk:
 * - `bindings.json`: a snapshot of the bindings, rewritten only when the log is folded into it;
 * - `state.bindings.log`: the binding changes since that snapshot, appended and fsync'd at each save (a
 *   batch per save, closed by a count line, so a save cut short by a crash is dropped whole on replay);
 * - `state.json` (lowdb): the rest, small, rewritten when it changed. Written after the bindings, so a
 *   cursor is never durable before the bindings of the operations it covers.
 * Open reads the snapshot and replays the log over it. Rewriting all bindings at every checkpoint made a
 * 100,000-user import rewrite a 15 MB file each time; now a checkpoint appends its own changes, and the
 * whole set is written again only once most of what the snapshot and the log hold is superseded.
 * Every whole-file write goes through a temp file and a rename, so a crash never leaves a half-written file.
 */
export class StateStore {
  private readonly byKey = new Map<string, Binding>();
  private readonly byUserId = new Map<string, Binding>();
  /** Binding changes since the last save, in order. */
  private pending: LogEntry[] = [];
  /** `state.json` differs from what is on disk. */
  private stateDirty = false;
  /**
   * `state.json` is not on disk yet: the next save writes it. Apart from {@link stateDirty}: a state that only
   * was never written holds nothing of this process's, so {@link refresh} may replace it by what another
   * process wrote meanwhile.
   */
  private stateMissing = false;
  /** The bindings must be written as a new snapshot at the next save (an old `state.json` held them). */
  private foldNeeded = false;
  // Set by take(), from the constructor and from refresh().
  private db!: Low<StateFileData>;
  private known!: KnownFiles;
  /** Saves run one after the other. */
  private saving: Promise<void> = Promise.resolve();

  /** What the files looked like when this process last read or wrote them (see refresh). */
  private diskStamp = '';

  private constructor(
    /** Absolute path of `state.json`. */
    readonly file: string,
    /** The state folder. */
    readonly dir: string,
    loaded: Loaded,
    stamp: string,
  ) {
    this.take(loaded, stamp);
  }

  /**
   * Opens `<stateDir>/state.json` and the bindings (snapshot + log), starting empty when they do not exist.
   * @throws StorageError naming the state folder when it is not a folder or cannot be created or read.
   */
  static async open(stateDir: string): Promise<StateStore> {
    await ensureStateFolder(stateDir);
    try {
      const stamp = await filesStamp(stateDir);
      const loaded = await StateStore.load(stateDir);
      return new StateStore(path.join(stateDir, STATE_FILE), path.resolve(stateDir), loaded, stamp);
    } catch (err) {
      // An unreadable state file is the machine's problem (permissions, a folder in its place): named as such.
      throw (await stateFolderError(err, stateDir)) ?? err;
    }
  }

  private static async load(stateDir: string): Promise<Loaded> {
    const file = path.join(stateDir, STATE_FILE);
    const adapter = new DataFile<StateFileData>(file, { parse: JSON.parse, stringify: (d) => JSON.stringify(d) });
    const db = new Low<StateFileData>(adapter, emptyState());
    const data = await adapter.read();
    const { bindings: legacy, ...rest } = { ...emptyState(), ...(data ?? {}) };
    db.data = rest;
    const read = await readBindings(stateDir);
    return {
      db,
      known: read.known,
      stateDirty: legacy !== undefined,
      stateMissing: !data,
      foldNeeded: read.snapshot === undefined && (legacy?.length ?? 0) > 0,
      // Without a snapshot, the bindings are the ones an old state.json held (if any).
      bindings: read.snapshot ?? legacy ?? [],
      entries: read.entries,
    };
  }

  private take(loaded: Loaded, stamp: string): void {
    this.db = loaded.db;
    this.known = loaded.known;
    this.stateDirty = loaded.stateDirty;
    this.stateMissing = loaded.stateMissing;
    this.foldNeeded = loaded.foldNeeded;
    this.byKey.clear();
    this.byUserId.clear();
    for (const b of loaded.bindings) this.index(b);
    for (const e of loaded.entries) this.replay(e);
    this.diskStamp = stamp;
  }

  /**
   * Reads the files again when another process changed them since this one last read or wrote them (a
   * `pbxsync import` while the daemon idles): a long-running process must neither plan against bindings it
   * never saw nor save over them. Call with the state lock held. Unsaved changes are kept (no reload).
   * Returns whether it reloaded.
   */
  async refresh(): Promise<boolean> {
    await this.saving;
    if (this.pending.length > 0 || this.stateDirty) return false;
    const stamp = await filesStamp(this.dir);
    if (stamp === this.diskStamp) return false;
    const loaded = await StateStore.load(this.dir);
    // Changed while the files were read (a status page's refresh overlapping a run's): a reload would drop that.
    if (this.pending.length > 0 || this.stateDirty) return false;
    this.take(loaded, stamp);
    return true;
  }

  private replay(e: LogEntry): void {
    if (e[0] === 'p') this.put(e[1]);
    else if (e[0] === 'r') this.remove(e[1]);
    else this.disable(e[1], e[2] ?? undefined);
  }

  private index(b: Binding, ks = keyString(b.key)): void {
    this.byKey.set(ks, b);
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

  /** Sources with a binding disabled by pbxsync (waiting out a removal grace period, or kept disabled). */
  sourcesWithDisabled(): Set<string> {
    const out = new Set<string>();
    for (const b of this.byKey.values()) if (b.disabledAt) out.add(b.key.source);
    return out;
  }

  /** Number of bindings (users pbxsync manages). */
  get managedCount(): number {
    return this.byKey.size;
  }

  /** Adds or replaces the binding of `binding.key` (a re-created user replaces its old binding). */
  putBinding(binding: Binding): void {
    // The stored copy is logged: it is never changed afterwards (setDisabledAt stores a new one).
    this.pending.push(['p', this.put(binding)]);
  }

  /** Forgets the binding of an identity (its user was deleted). */
  removeBinding(key: IdentityKey): void {
    if (this.remove(key)) this.pending.push(['r', { source: key.source, anchor: key.anchor }]);
  }

  /** Sets (disabled by pbxsync) or clears (enabled again) the disabledAt of a binding. */
  setDisabledAt(key: IdentityKey, at: string | undefined): void {
    if (this.disable(key, at)) this.pending.push(['d', { source: key.source, anchor: key.anchor }, at ?? null]);
  }

  private put(binding: Binding): Binding {
    const ks = keyString(binding.key);
    const old = this.byKey.get(ks);
    if (old) this.byUserId.delete(old.userId);
    const previousOwner = this.byUserId.get(binding.userId);
    if (previousOwner) this.byKey.delete(keyString(previousOwner.key));
    const stored = copyBinding(binding);
    // The key string once (a binding per created user in a large import).
    this.index(stored, ks);
    return stored;
  }

  private remove(key: IdentityKey): boolean {
    const b = this.byKey.get(keyString(key));
    if (!b) return false;
    this.byKey.delete(keyString(key));
    this.byUserId.delete(b.userId);
    return true;
  }

  private disable(key: IdentityKey, at: string | undefined): boolean {
    const b = this.byKey.get(keyString(key));
    if (!b) return false;
    this.index(copyBinding(b, at === undefined ? null : at));
    return true;
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
    this.stateDirty = true;
    if (cursor === undefined) delete this.db.data.cursors[source];
    else this.db.data.cursors[source] = cursor;
  }

  /** Identities read by the last complete full read of each source. */
  lastGoodCounts(): Record<string, number> {
    return { ...this.db.data.lastGoodCount };
  }

  /** Records the size of a complete full read whose operations were applied. */
  setLastGoodCount(source: string, count: number): void {
    this.stateDirty = true;
    this.db.data.lastGoodCount[source] = count;
  }

  /** Run history, newest first. */
  runs(): RunRecord[] {
    return [...this.db.data.runs].reverse();
  }

  /** Adds or replaces (same runId) a run record; only the last {@link MAX_RUNS} are kept. */
  recordRun(run: RunRecord): void {
    this.stateDirty = true;
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
    this.stateDirty = true;
    this.db.data.heldPlans = [...this.db.data.heldPlans.filter((p) => p.runId !== plan.runId), plan];
  }

  /** Forgets a held plan (applied or superseded). */
  removeHeldPlan(runId: string): void {
    this.stateDirty = true;
    this.db.data.heldPlans = this.db.data.heldPlans.filter((p) => p.runId !== runId);
  }

  /** The latest held plan, if any. */
  held(): HeldPlan | undefined {
    return this.db.data.heldPlans.at(-1);
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

  /**
   * Records the outcome of a run for a source (success and failure dates follow from `ok`); `clean` when the
   * run ended with exit 0 having read something of the source (see {@link SourceHealth.lastClean}).
   */
  setSourceHealth(source: string, check: SourceCheck, options: { clean?: boolean } = {}): void {
    this.stateDirty = true;
    const prev = this.db.data.sourceHealth[source] ?? {};
    const next: SourceHealth = check.ok
      ? { ...prev, lastSuccess: check.at, last: { ...check } }
      : { ...prev, lastFailure: check.at, lastError: check.error ?? prev.lastError, last: { ...check } };
    if (options.clean) next.lastClean = check.at;
    this.db.data.sourceHealth[source] = next;
  }

  /** How the last reads of a source went (a copy), if it ever ran. */
  sourceHealthOf(source: string): SourceHealth | undefined {
    const h = this.db.data.sourceHealth[source];
    return h ? structuredClone(h) : undefined;
  }

  /** Records a successful read of a source. */
  recordSourceSuccess(source: string, at: string): void {
    this.stateDirty = true;
    this.db.data.sourceHealth[source] = { ...this.db.data.sourceHealth[source], lastSuccess: at };
  }

  /** Records a failed read of a source with its (already redacted) error message. */
  recordSourceFailure(source: string, at: string, message: string): void {
    this.stateDirty = true;
    this.db.data.sourceHealth[source] = { ...this.db.data.sourceHealth[source], lastFailure: at, lastError: message };
  }

  /** The input a source last applied completely, if it is remembered. */
  converged(source: string): ConvergedInput | undefined {
    const c = this.db.data.converged?.[source];
    return c ? { ...c } : undefined;
  }

  /** Remembers (or, with undefined, forgets) the input a source last applied completely. */
  setConverged(source: string, input: ConvergedInput | undefined): void {
    const all = this.db.data.converged ?? {};
    if (input === undefined && !(source in all)) return;
    this.stateDirty = true;
    if (input === undefined) delete all[source];
    else all[source] = { ...input };
    this.db.data.converged = all;
  }

  /** The input a CSV source applied last, if it is recorded. */
  lastApplied(source: string): LastAppliedInput | undefined {
    const a = this.db.data.lastApplied?.[source];
    return a ? { ...a } : undefined;
  }

  /** Records (or, with undefined, forgets) the input a CSV source applied last; its copy is the caller's. */
  setLastApplied(source: string, input: LastAppliedInput | undefined): void {
    const all = this.db.data.lastApplied ?? {};
    if (input === undefined && !(source in all)) return;
    this.stateDirty = true;
    if (input === undefined) delete all[source];
    else all[source] = { ...input };
    this.db.data.lastApplied = all;
  }

  /** The last file a drop-folder source moved to processed/ or failed/, if one is recorded. */
  lastDroppedFile(source: string): LastDroppedFile | undefined {
    const f = this.db.data.lastDroppedFile?.[source];
    return f ? { ...f } : undefined;
  }

  /** Records the last file a drop-folder source moved; saved with the next {@link save}. */
  setLastDroppedFile(source: string, file: LastDroppedFile): void {
    this.stateDirty = true;
    this.db.data.lastDroppedFile = { ...this.db.data.lastDroppedFile, [source]: { ...file } };
  }

  /**
   * Changes whenever the bindings on disk change (a log batch appended or a fold); undefined while there
   * are unsaved changes or what is on disk is unknown (a failed write). Compared, never interpreted.
   */
  bindingsRevision(): string | undefined {
    if (this.foldNeeded || this.pending.length > 0) return undefined;
    const k = this.known;
    return `${k.generation}:${k.logIno}:${k.logSize}`;
  }

  /** The planner's view of the state. */
  planState(now: Date, pendingCreates: PendingCreate[] = []): PlanState {
    return { bindings: this.bindings(), lastGoodCount: this.lastGoodCounts(), now, pendingCreates };
  }

  /**
   * Makes the changes durable: the binding changes first (appended to the log, or a fold), then
   * `state.json` when it changed. Saves are serialised; each takes the changes made before it starts.
   */
  save(): Promise<void> {
    const next = this.saving.then(() => this.write(false));
    this.saving = next.catch(() => undefined);
    return next;
  }

  /**
   * Folds the log into a new `bindings.json` (when the log holds anything) and saves the rest, leaving a
   * single file to read at the next open. Not needed for correctness: saves fold on their own when the log
   * outgrows the snapshot.
   */
  compact(): Promise<void> {
    const next = this.saving.then(() => this.write(true));
    this.saving = next.catch(() => undefined);
    return next;
  }

  private async write(compact: boolean): Promise<void> {
    // Taken synchronously: changes made while the files are written belong to the next save.
    const entries = this.pending;
    this.pending = [];
    try {
      await this.writeBindings(entries, compact);
    } catch (err) {
      // What reached the disk is unknown: the next save writes a whole snapshot.
      this.known = { ...this.known, logSize: -1 };
      this.foldNeeded = true;
      throw err;
    }
    if (this.stateDirty || this.stateMissing) {
      this.stateDirty = false;
      this.stateMissing = false;
      try {
        await this.db.write();
      } catch (err) {
        this.stateDirty = true;
        throw err;
      }
    }
    // Saves run one at a time and, during a run, under the state lock: what is on disk now is this process's.
    this.diskStamp = await filesStamp(this.dir);
  }

  private async writeBindings(entries: LogEntry[], compact: boolean): Promise<void> {
    const known = this.known;
    const hasSnapshot = known.generation > 0;
    if (compact) {
      const clean = hasSnapshot && !this.foldNeeded && entries.length === 0 && known.logSize === this.headerBytes();
      if (!clean) await this.fold();
      return;
    }
    if (!this.foldNeeded && entries.length === 0) return;
    if (!this.foldNeeded && hasSnapshot && known.logSize >= 0) {
      const batch = serializeBatch(entries);
      const size = known.logSize + batch.bytes;
      const records = known.snapshotRecords + known.logRecords + entries.length;
      const due = rewriteDue({ logBytes: size, minLogBytes: MIN_FOLD_BYTES, records, live: this.byKey.size });
      if (!due && (await appendBatch(this.dir, known, batch))) {
        this.known = { ...known, logSize: size, logRecords: known.logRecords + entries.length };
        return;
      }
    }
    // A fold: most of what a load would read is superseded, there is no snapshot yet, the log is not what this
    // process left (another process wrote it, a torn tail, a failed write), or an old state.json held the
    // bindings.
    await this.fold();
  }

  /** Writes all bindings as the next generation's snapshot, with an empty log. */
  private async fold(): Promise<void> {
    // Copied, and the changes since the save began dropped, in one synchronous step: the snapshot holds
    // every change made up to here, and the next log batch only the ones made after.
    const all = [...this.byKey.values()];
    this.pending = [];
    this.known = await writeSnapshot(this.dir, this.known.generation + 1, all);
    this.foldNeeded = false;
  }

  /** Size of the log of the current generation when it holds no batch. */
  private headerBytes(): number {
    return Buffer.byteLength(logHeader(this.known.generation));
  }
}
