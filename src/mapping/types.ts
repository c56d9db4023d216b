import type { Identity, IdentityKey, IdentityOrigin, RecordIssue, UserFields } from '../model/index.js';

/** An inclusive range of extension numbers, e.g. { from: "1000", to: "1999" }. Same digit count at both ends. */
export interface NumberRange {
  from: string;
  to: string;
}

/** How the extension of a desired user is decided. */
export type ExtensionRequest =
  /** Taken from the record (e.g. the 3CX CSV `Number` column, the digits of `ipPhone`). */
  | { kind: 'fixed'; value: string; rule: string }
  /** Next free number in these ranges (global or the department's), unless the identity is already bound. */
  | { kind: 'allocate'; ranges: NumberRange[]; rule: string };

/** One mapping decision, for `explain` and for the plan's reasons. */
export interface Decision {
  /** The field decided (`scope`, `extension`, `role`, `department`, `email`, ...). */
  field: string;
  /** The value chosen, secrets masked. */
  value?: unknown;
  /** The rule that decided: `mappings/3cx-csv.yml#roles[2]`, `default`, ... */
  rule: string;
  /** Human sentence: "member of group Sales → department Sales". */
  reason: string;
}

/** How PBX users bound to identities that leave scope, are disabled or deleted, are handled. */
export interface RemovalPolicy {
  /** `disable` (default) sets Enabled=false; `delete` disables first and deletes after the grace period; `keep` does nothing. */
  action: 'disable' | 'delete' | 'keep';
  /** Days between disabling and deleting (action=delete). */
  graceDays: number;
}

/** Existing unmanaged PBX users may be bound to identities instead of creating duplicates (opt-in). */
export type AdoptionMatch = 'email' | 'extension';

/** The mapping's verdict on one identity, as the planner consumes it. */
export interface DesiredUser {
  key: IdentityKey;
  /** Only the fields this mapping manages; fields absent here are never changed in the PBX. */
  fields: Partial<UserFields>;
  extension: ExtensionRequest;
  /** Departments the mapping may create when missing (false: a missing department is a conflict). */
  createDepartments: boolean;
  /** Send the welcome e-mail on creation. */
  sendWelcome: boolean;
  /** Adoption rules that may bind an existing unmanaged user, in order. Empty: never adopt. */
  adopt: AdoptionMatch[];
  /** Disabled in the source (maps to `enabled: false` through the removal policy, not through fields). */
  disabledInSource: boolean;
  reasons: Decision[];
  origin?: IdentityOrigin;
  /** The identity's Identity.matchBound: how the planner may recognise it under another anchor. */
  matchBound?: 'extension' | 'email';
  /**
   * Values of fields the record does not supply (Identity.partialAttributes: a CSV file without their
   * columns), used only when the user is created: the mapping's defaults for a new user. Never compared with
   * an existing user, who keeps what the PBX has.
   */
  createOnly?: Partial<UserFields>;
}

/** The result of mapping one identity. */
export type MappingResult =
  | { kind: 'user'; user: DesiredUser }
  | { kind: 'out-of-scope'; key: IdentityKey; reasons: Decision[] }
  | { kind: 'invalid'; key: IdentityKey; issues: RecordIssue[]; reasons: Decision[] };

/** A compiled mapping file. `map` is pure apart from async expression evaluation. */
export interface Mapping {
  /** Path of the mapping file. */
  readonly file: string;
  readonly removal: RemovalPolicy;
  /**
   * True when the same identity always maps to the same result: no JSONata expression, which could read the
   * clock (`$now()`). Only such a mapping lets a run skip an input identical to one already applied.
   */
  readonly deterministic: boolean;
  /** SHA-256 of the mapping text this was compiled from (what a run really used, even if the file changed since). */
  readonly sourceHash: string;
  /**
   * The rule (`<file>#<yaml path>`) of each field this mapping sets: what a planned change of that field
   * follows (DESIGN §6.7; the plan lists them per source). `pbxsync explain` names the exact rule for one
   * identity (which role rule matched, which table row).
   */
  readonly rules: Readonly<Partial<Record<keyof UserFields, string>>>;
  /** The mapping file as its rules name it (`<file>` of `<file>#<yaml path>`). */
  readonly ruleFile: string;
  /**
   * Maps one identity. `explain: false` skips recording the decisions (`reasons` comes back empty): a sync
   * of 100,000 records does not need them, `pbxsync explain` does. Default true. The result comes back
   * directly when no JSONata expression has to run, else as a promise.
   */
  map(identity: Identity, options?: { explain?: boolean }): MappingResult | Promise<MappingResult>;
}
