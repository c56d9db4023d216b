/**
 * The error taxonomy. Every error pbxsync raises on purpose is one of these, with the cause chained.
 * One top-level handler (src/cli/main.ts) maps them to exit codes.
 */
import path from 'node:path';

/** Base class: a message meant for an admin, plus a stable code. */
export class PbxsyncError extends Error {
  readonly code: string;
  constructor(message: string, options?: { cause?: unknown; code?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = options?.code ?? 'PBXSYNC';
  }
}

/** Worth trying again: network failures, timeouts, 429, 5xx, a lock held for a moment. */
export class RetryableError extends PbxsyncError {
  /** Server-requested delay (Retry-After), in milliseconds. */
  readonly retryAfterMs?: number;
  constructor(message: string, options?: { cause?: unknown; code?: string; retryAfterMs?: number }) {
    super(message, options);
    this.retryAfterMs = options?.retryAfterMs;
  }
}

/** Will fail the same way again: validation refused by the target, a bad record. */
export class TerminalError extends PbxsyncError {
  /** The field the target refused, when it said. */
  readonly field?: string;
  constructor(message: string, options?: { cause?: unknown; code?: string; field?: string }) {
    super(message, options);
    this.field = options?.field;
  }
}

/**
 * The operation collides with something pbxsync does not own (an extension, e-mail, DID or MAC held by an
 * unmanaged user). Planned as a `conflict`, never retried.
 */
export class ConflictError extends TerminalError {
  /** Who holds the contested value, e.g. "extension 200 (unmanaged user Amanda Camden)". */
  readonly holder?: string;
  constructor(message: string, options?: { cause?: unknown; code?: string; field?: string; holder?: string }) {
    super(message, options);
    this.holder = options?.holder;
  }
}

/** Invalid configuration or mapping file; exit code 2. `problems` lists every problem found. */
export class ConfigError extends PbxsyncError {
  readonly problems: ConfigProblem[];
  constructor(message: string, problems: ConfigProblem[] = [], options?: { cause?: unknown }) {
    super(message, { ...options, code: 'CONFIG' });
    this.problems = problems;
  }
}

/** One problem in a configuration or mapping file. */
export interface ConfigProblem {
  file: string;
  line?: number;
  column?: number;
  /** JSON path within the document, e.g. `sources[1].schedule`. */
  path: string;
  message: string;
}

/** Formats a ConfigProblem as `file:line:col: path: message`. */
export function formatProblem(p: ConfigProblem): string {
  const where = [p.file, p.line, p.column].filter((x) => x !== undefined).join(':');
  return `${where}: ${p.path ? p.path + ': ' : ''}${p.message}`;
}

/** Bad command-line usage; exit code 2. */
export class UsageError extends PbxsyncError {
  constructor(message: string) {
    super(message, { code: 'USAGE' });
  }
}

/** Another process holds the state lock. */
export class LockedError extends RetryableError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { ...options, code: 'LOCKED' });
  }
}

/**
 * pbxsync's own storage failed: the state folder (state, bindings, journal, lock) or the embedded PBX store
 * cannot be read or written because of the machine (permissions, a read-only or full filesystem, a path taken
 * by a folder). Not the input's fault: what was being done is retried once an admin fixed it.
 */
export class StorageError extends RetryableError {
  /** The folder pbxsync could not use. */
  readonly folder: string;
  constructor(message: string, options: { cause?: unknown; folder: string }) {
    super(message, { cause: options.cause, code: 'STORAGE' });
    this.folder = options.folder;
  }
}

/**
 * File-system error codes that say the machine is in the way, not the data: no permission, a read-only,
 * full or failing filesystem, too many open files, a path that is a folder where a file belongs or the
 * other way round.
 */
const STORAGE_CODES = new Set(['EACCES', 'EPERM', 'EROFS', 'ENOSPC', 'EDQUOT', 'EIO', 'EISDIR', 'ENOTDIR', 'EMFILE', 'ENFILE', 'EBUSY']);

/** The file-system error (one of the machine's, see STORAGE_CODES) in `err` or its causes, if any. */
function storageCause(err: unknown): NodeJS.ErrnoException | undefined {
  let e: unknown = err;
  for (let depth = 0; e instanceof Error && depth < 5; depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && STORAGE_CODES.has(code)) return e as NodeJS.ErrnoException;
    e = (e as Error & { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * `err` as a {@link StorageError} when a file-system error of the machine (EACCES, EROFS, ENOSPC, EISDIR…)
 * is at its root, naming the folder (the failing path's folder when the error says it, else `folder`);
 * undefined for every other error. Meant for the errors of a run that touches no file but pbxsync's own
 * (the input file's problems are read issues, a mapping file's a ConfigError).
 */
export function asStorageError(err: unknown, folder: string): StorageError | undefined {
  if (err instanceof StorageError) return err;
  if (err instanceof ConfigError || err instanceof UsageError) return undefined;
  const cause = storageCause(err);
  if (!cause) return undefined;
  const where = cause.path ? path.dirname(path.resolve(cause.path)) : path.resolve(folder);
  return new StorageError(`pbxsync cannot use its own files in ${where} (${cause.code}): ${describeError(err)}`, { cause: err, folder: where });
}

/** True for errors worth retrying (ours, or Node's network error codes). */
export function isRetryable(err: unknown): boolean {
  if (err instanceof RetryableError) return true;
  if (err instanceof PbxsyncError) return false;
  const code = (err as { code?: string } | undefined)?.code;
  return (
    typeof code === 'string' &&
    ['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND', 'ECONNABORTED'].includes(code)
  );
}

/**
 * The message of an error and its causes, joined: "a: b: c". What the text holds already is not repeated:
 * pbxsync's wrappers quote their cause in their own message (`new RetryableError(\`sending mail to ${to}
 * failed: ${describeError(err)}\`, { cause: err })`) and keep it as `cause` for the stack, and appending it
 * again printed "…: connect ECONNREFUSED 127.0.0.1:25: connect ECONNREFUSED 127.0.0.1:25". A cause's message
 * is taken a ": "-separated part at a time (libraries join context and detail that way, nodemailer even a
 * reply twice), and only the parts not in the text yet are added; the causes below follow the same way. The
 * error's own message is kept whole.
 */
export function describeError(err: unknown): string {
  let text = '';
  let e: unknown = err;
  for (let depth = 0; e !== undefined && e !== null && depth < 5; depth++) {
    const msg = e instanceof Error ? e.message : String(e);
    if (!text) text = msg;
    else if (msg && !text.includes(msg)) {
      for (const part of msg.split(': ')) {
        if (part && !text.includes(part)) text = text ? `${text}: ${part}` : part;
      }
    }
    e = e instanceof Error ? (e as Error & { cause?: unknown }).cause : undefined;
  }
  return text;
}

/** Exit codes of DESIGN §3. */
export const EXIT = { ok: 0, failure: 1, usage: 2, held: 3, partial: 4 } as const;

/** The exit code an error ends a command with (DESIGN §3): 2 for usage and configuration, 1 for the rest. */
export function exitCodeOfError(err: unknown): number {
  return err instanceof ConfigError || err instanceof UsageError ? EXIT.usage : EXIT.failure;
}
