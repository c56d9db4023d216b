import type { IdentityKey, IdentityOrigin, PbxUser, RecordIssue, UserFieldName, UserFields } from '../model/index.js';
import type { DesiredUser, NumberRange, RemovalPolicy } from '../mapping/types.js';

/** The kinds of plan operation (DESIGN §1). */
export type OperationKind = 'create' | 'update' | 'disable' | 'enable' | 'delete' | 'adopt' | 'conflict';

/**
 * One planned change. Plain data: before/after hold only the fields concerned; secret fields are kept in
 * memory for apply and masked whenever a plan is serialised (see serializePlan).
 */
export interface Operation {
  /** Deterministic id, stable across re-planning of the same inputs: `create:hr-csv/1001`. */
  id: string;
  kind: OperationKind;
  /** The identity that caused it (absent for conflicts about unmanaged users only). */
  key?: IdentityKey;
  /** Target user id (all kinds but create). */
  userId?: string;
  extension: string;
  before?: Partial<UserFields>;
  after?: Partial<UserFields>;
  /** Fields changed (update) or set (create). */
  fields?: UserFieldName[];
  /** Human reason: "new in hr-csv (line 14)", "EmailAddress changed", "left scope 31 days ago". */
  reason: string;
  /** create only */
  sendWelcome?: boolean;
  /** conflict only: who holds what. */
  conflict?: { field: string; holder: string };
  origin?: IdentityOrigin;
  /** The user's name for humans (plan output, reports); never a secret. */
  name?: string;
  /**
   * enable/disable only: follows the mapping's `enabled` rule (a 3CX `Disabled` cell), not the removal
   * policy, so no grace period starts (Binding.disabledAt).
   */
  mapped?: true;
}

/** Integer counts of a plan or an applied run (the JSON summary contract of DESIGN §3). */
export interface PlanSummary {
  create: number;
  update: number;
  disable: number;
  enable: number;
  delete: number;
  adopt: number;
  unchanged: number;
  conflicts: number;
  errors: number;
}

/** Per source: what was read and how it ended. */
export interface SourceReadResult {
  source: string;
  mode: 'full' | 'partial' | 'delta';
  complete: boolean;
  /** Cursor to save once this source's operations are applied. */
  cursor?: string;
  /** Identities read (in scope or not). */
  count: number;
  desired: DesiredUser[];
  /** Anchors the source reported deleted (delta tombstones) or explicitly disabled. */
  deleted: string[];
  /** Anchors seen but out of scope. */
  outOfScope: string[];
  issues: RecordIssue[];
  /** Removal policy of the source's mapping. */
  removal: RemovalPolicy;
  /** The mapping rule of each field the source's mapping sets (Mapping.rules): what a change of that field follows. */
  rules?: Readonly<Partial<Record<UserFieldName, string>>>;
  /** The source's mapping file, as its rules name it. */
  mappingFile?: string;
}

/** What the state remembers about a binding. */
export interface Binding {
  key: IdentityKey;
  userId: string;
  extension: string;
  boundAt: string;
  /**
   * Set when pbxsync disabled the user because it left scope (not for a disable the mapping asks for); the
   * grace period counts from here.
   */
  disabledAt?: string;
}

/** Planner inputs besides desired and actual. */
export interface PlanState {
  bindings: Binding[];
  /** Identities read at the last complete read, per source (short-read guard). */
  lastGoodCount: Record<string, number>;
  now: Date;
  /**
   * Creates an earlier run journaled as started but never confirmed (a crash or kill -9 mid-apply). An unbound
   * PBX user holding such a create's extension is adopted silently instead of being created twice.
   */
  pendingCreates?: PendingCreate[];
}

/** A create journaled as started without a matching 'done' (see Journal.pendingCreates). */
export interface PendingCreate {
  key: IdentityKey;
  extension: string;
}

/** Numbering rules of the PBX (service.yml `numbering`). */
export interface NumberingPolicy {
  ranges: NumberRange[];
  reserved: NumberRange[];
  emergency: string[];
}

/** Safety thresholds (service.yml `safety`). */
export interface SafetyPolicy {
  /** Hold the plan when it would delete more than this many users... */
  maxDeletes: number;
  /** ...or more than this percentage of managed users. */
  maxDeletePercent: number;
  maxDisables: number;
  maxDisablePercent: number;
  /** A full read smaller than this fraction of the last good read removes nothing and holds the plan. */
  minSourceRatio: number;
}

/** The plan: pure data, deterministic for the same inputs. */
export interface Plan {
  runId: string;
  createdAt: string;
  /** Hash of the inputs (desired, actual, bindings): `apply FILE` refuses a plan whose basis changed. */
  basis: string;
  sources: Array<Omit<SourceReadResult, 'desired'>>;
  /** Departments to create before the operations run. */
  departments: string[];
  operations: Operation[];
  summary: PlanSummary;
  /** Why a guard held the plan (nothing may be applied without approval), or null. */
  held: string | null;
  issues: RecordIssue[];
  /**
   * Things worth telling the operator that are not operations, e.g. a bound identity whose directory
   * extension differs from its bound (sticky) extension.
   */
  notes?: string[];
}

/** A snapshot of what the target holds, for planning. */
export interface ActualState {
  users: PbxUser[];
  departments: string[];
}
