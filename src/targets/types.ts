import type { PbxUser, UserFields } from '../model/index.js';

/**
 * A PBX target. Asynchronous and remote-shaped even for the embedded store, so 3CX fits the same engine:
 * listings are paged behind AsyncIterables, every write may fail alone, errors are RetryableError (network,
 * 429, 5xx), ConflictError (something unmanaged holds the value) or TerminalError (refused).
 *
 * Targets never import connectors or the reconciler.
 */
export interface Target {
  readonly kind: 'embedded' | '3cx' | string;
  /** What the apply queue may do against this target. */
  readonly limits: TargetLimits;

  /** Every user, normalised (server defaults folded so an unchanged user compares equal). */
  listUsers(signal?: AbortSignal): AsyncIterable<PbxUser>;
  /** Department names. */
  listDepartments(signal?: AbortSignal): Promise<string[]>;
  /**
   * Mapped `options` in the form listUsers reports them, without those this target cannot store (absent:
   * every option is stored as given). The engine passes desired options through it before planning, so an
   * option no write can change is never planned as a change on every run.
   */
  canonicalOptions?(options: Readonly<Record<string, string>>): Record<string, string>;
  /** Creates missing departments; existing ones are left as they are. */
  ensureDepartments(names: string[]): Promise<void>;

  /** Creates a user; the target generates credentials (SIP auth, web password, PIN when none given). */
  createUser(input: CreateUserInput): Promise<PbxUser>;
  /**
   * Creates several users in one call (optional; without it apply calls createUser per user). Returns one
   * entry per input, in order: the user created, or the Error that refused it (classified like createUser's,
   * retryable or not). Throws only when nothing was created, so the whole call may be retried.
   */
  createUsers?(inputs: CreateUserInput[]): Promise<Array<CreatedUser | Error>>;
  /** Changes only the fields given. */
  updateUser(id: string, changes: Partial<UserFields>): Promise<void>;
  /** Deletes users; per-user failures are returned, not thrown. */
  deleteUsers(ids: string[]): Promise<DeleteResult[]>;
  /** Sends (or re-sends) the welcome e-mail with account details. */
  sendWelcome(id: string): Promise<void>;
  /** Users whose welcome e-mail is still due (not sent yet, or refused); absent when the PBX sends its own. */
  pendingWelcomes?(): number;
  /**
   * The status tags the PBX shows for a user on its Users panel (the hosted-PBX guide's New, Setup Required,
   * Password Required); absent when the PBX shows its own.
   */
  statusTags?(id: string): string[];
  /**
   * Users whose welcome e-mail was with the mail server when a process stopped without recording the outcome,
   * in extension order: it may or may not have arrived. Absent when the PBX sends its own.
   */
  welcomesUnsure?(): WelcomeUnsure[];

  /**
   * Makes everything written so far durable. The apply loop calls it before journaling operations as done;
   * a target whose writes are durable on return (3CX) does nothing. Side effects that must not precede
   * durability happen here (the embedded store sends the welcome mails of users it has just made durable).
   */
  commit(): Promise<void>;
  /** Number of write calls that reached the store/server (for tests and metrics). */
  writeCount(): number;
  close(): Promise<void>;
}

/**
 * A user whose welcome e-mail is unsure (see Target.welcomesUnsure): until a later attempt records its outcome
 * (the next run that writes, the daemon's start, `pbxsync welcome EXTENSION`).
 */
export interface WelcomeUnsure {
  extension: string;
  /** Where it went (absent when the address was removed since). */
  email?: string;
  /** When the round of mails it was in went to the mail server (ISO 8601). */
  since: string;
}

/** Concurrency and rate limits the apply queue honours for a target. */
export interface TargetLimits {
  concurrency: number;
  /** Writes per second at most (undefined: no limit). */
  writesPerSecond?: number;
}

/** Input of Target.createUser. */
export interface CreateUserInput extends UserFields {
  extension: string;
  /** Send the welcome e-mail after creation (when the user has an e-mail). */
  sendWelcome: boolean;
}

/** What Target.createUsers reports of a user it created. */
export interface CreatedUser {
  id: string;
  extension: string;
}

/** Result of one delete. */
export interface DeleteResult {
  id: string;
  /** Undefined when deleted. */
  error?: string;
}
