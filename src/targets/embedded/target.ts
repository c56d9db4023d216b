import crypto from 'node:crypto';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { EmbeddedTargetConfig, MailConfig } from '../../config/types.js';
import { RetryableError, TerminalError, describeError } from '../../errors/index.js';
import { registerSecret, type Logger } from '../../log.js';
import { extensionProblem } from '../../mapping/numbering.js';
import { noItems, type PbxUser, type UserFieldName, type UserFields } from '../../model/index.js';
import type { NumberingPolicy } from '../../reconcile/types.js';
import { createMailer, type Mailer } from '../../mail/mailer.js';
import { welcomeMessage } from '../../mail/welcome.js';
import type { CreatedUser, CreateUserInput, DeleteResult, Target, TargetLimits, WelcomeUnsure } from '../types.js';
import { generateSipAuthId, generateSipPassword, generateVmPin, generateWebPassword } from './credentials.js';
import {
  departmentNameProblem,
  fieldEquals,
  isUserField,
  normaliseField,
  normaliseNewUser,
  statusTags,
  withoutMain,
  type StatusTag,
} from './rules.js';
import { isoClock } from '../../util/clock.js';
import { EmbeddedStore, type StoredUser, type UniqueClaims } from './store.js';

/** Options of EmbeddedTarget.fromConfig. */
export interface EmbeddedTargetOptions {
  numbering: NumberingPolicy;
  mail: MailConfig;
  logger: Logger;
  /** Web-client address written into welcome e-mails. */
  webClientUrl?: string;
  /** Open without the lock and refuse every write (export, status, plan, dry runs). */
  readOnly?: boolean;
  /** Mail transport; default `createMailer(options.mail, logger)`. Tests pass their own. */
  mailer?: Mailer;
  /** See StoreOpenOptions.lockStaleMs. */
  lockStaleMs?: number;
  /** See StoreOpenOptions.compactMinBytes. */
  compactMinBytes?: number;
  /** Clock, for tests. */
  now?: () => Date;
  /**
   * Aborted when the process stops (SIGTERM): no further welcome e-mail is started (they stay pending for the
   * next session), and those already with the mail server get {@link STOP_MAIL_GRACE_MS} to finish.
   */
  signal?: AbortSignal;
}

/** A user as `status` and `export --format json` show it: no credentials, plus the status tags. */
export interface UserView extends Omit<PbxUser, 'vmPin'> {
  status: StatusTag[];
  createdAt: string;
  updatedAt: string;
  welcomeSentAt: string | null;
  welcomePending: boolean;
  credentialsVersion: number;
}

/** Users per page of listUsers: between pages the event loop runs, so a listing never starves timers. */
const PAGE_SIZE = 1000;

/** Welcome e-mails in flight at once while the queue drains. */
const WELCOME_LANES = 4;

/** Failed welcome e-mails in a row after which the rest of the queue waits for the next run. */
const WELCOME_FAILURES_BEFORE_PAUSE = 3;

/**
 * How long a stop waits for welcome e-mails already with the mail server. Past it they are left in doubt
 * (sent again at the next start), so a hung mail server cannot hold a stop past systemd's TimeoutStopSec.
 */
export const STOP_MAIL_GRACE_MS = 15_000;

/**
 * The built-in PBX user store (DESIGN §5), the default target. Every write is checked against the seeds'
 * rules (extension digits, unique, immutable, never emergency or reserved; first name required; e-mail,
 * DIDs and MACs unique; role and departments valid; PIN digits only), credentials are generated on
 * creation, and the welcome e-mail carries them to the user.
 *
 * Writes change memory; `commit()` makes them durable (see store.ts). One process owns the store.
 */
export class EmbeddedTarget implements Target {
  readonly kind = 'embedded';
  /** In-memory operations; a few in flight let welcome e-mails overlap. */
  readonly limits: TargetLimits = { concurrency: 4 };

  private store?: EmbeddedStore;
  private readonly mailer: Mailer;
  /**
   * Users whose welcome e-mail goes out at the next commit (an outbox). WARNING: never sent from createUser:
   * a crash before the commit re-creates the user with new credentials, and a mail sent earlier would have
   * carried credentials that never existed.
   */
  private welcomeQueue: string[] = [];
  /** Creates within one millisecond share their timestamp text (~4 MB over 100,000 users). */
  private readonly timestamp: () => string;
  private readonly now: () => Date;

  constructor(
    private readonly config: EmbeddedTargetConfig,
    private readonly options: EmbeddedTargetOptions,
  ) {
    this.mailer = options.mailer ?? createMailer(options.mail, options.logger);
    this.now = options.now ?? (() => new Date());
    this.timestamp = isoClock(this.now);
  }

  /** Builds and opens the target (lock taken unless `readOnly`). */
  static async fromConfig(config: EmbeddedTargetConfig, options: EmbeddedTargetOptions): Promise<EmbeddedTarget> {
    const target = new EmbeddedTarget(config, options);
    await target.open();
    return target;
  }

  /**
   * Opens the store file: takes the lock, reads the document and its journal.
   * @throws LockedError when another process owns the store.
   */
  async open(): Promise<void> {
    if (this.store) return;
    this.store = await EmbeddedStore.open(this.config.storeFile, {
      logger: this.options.logger,
      readOnly: this.options.readOnly,
      lockStaleMs: this.options.lockStaleMs,
      compactMinBytes: this.options.compactMinBytes,
    });
    if (this.options.readOnly) return;
    const inDoubt = this.store.welcomesInDoubt();
    if (inDoubt.length > 0) {
      this.options.logger.warn(
        'welcome e-mails were with the mail server when pbxsync stopped without recording the outcome; they are sent again, so these users may get the same e-mail (same credentials) twice',
        { extensions: inDoubt.map((u) => u.extension) },
      );
    }
    // Mails left due by an earlier process (stopped before or while sending them, or the mail server failed)
    // go out with this session's first commit.
    if (this.options.mail.welcome) this.welcomeQueue = this.store.pendingWelcomeIds();
  }

  /** Random id of this PBX install (stable across restarts). */
  get installId(): string {
    return this.db().installId;
  }

  async *listUsers(signal?: AbortSignal): AsyncIterable<PbxUser> {
    const store = this.db();
    const ids = store.idsInExtensionOrder();
    for (let start = 0; start < ids.length; start += PAGE_SIZE) {
      signal?.throwIfAborted();
      if (start > 0) await yieldToEventLoop();
      const end = Math.min(start + PAGE_SIZE, ids.length);
      for (let i = start; i < end; i++) {
        const user = store.getById(ids[i]);
        // Deleted since the listing started: skip rather than yield a ghost.
        if (user) yield toPbxUser(user);
      }
    }
  }

  async listDepartments(): Promise<string[]> {
    return this.db().departmentNames();
  }

  async ensureDepartments(names: string[]): Promise<void> {
    const store = this.db();
    for (const name of names) {
      const problem = departmentNameProblem(name);
      if (problem) throw new TerminalError(problem, { field: 'department' });
    }
    const now = this.now().toISOString();
    for (const name of names) store.addDepartment(name, now);
  }

  async createUser(input: CreateUserInput): Promise<PbxUser> {
    return toPbxUser(this.insertUser(input));
  }

  /**
   * Creates the users in order, each checked on its own like {@link createUser}: a refused one is an Error
   * in its place, and the others are created. One call for a whole batch spares a bulk import a promise, a
   * listing copy and a journal round trip per user.
   */
  async createUsers(inputs: CreateUserInput[]): Promise<Array<CreatedUser | Error>> {
    const out: Array<CreatedUser | Error> = [];
    for (const input of inputs) {
      try {
        const user = this.insertUser(input);
        out.push({ id: user.id, extension: user.extension });
      } catch (err) {
        out.push(err as Error);
      }
    }
    return out;
  }

  private insertUser(input: CreateUserInput): StoredUser {
    const store = this.db();
    const extension = typeof input.extension === 'string' ? input.extension.trim() : String(input.extension);
    const who = `extension ${extension}`;
    const problem = extensionProblem(extension, this.options.numbering);
    if (problem) throw new TerminalError(problem, { field: 'extension' });
    const fields = normaliseNewUser(input, who);
    this.assertDepartmentsExist(who, fields.department, fields.extraDepartments);

    let sipAuthId = generateSipAuthId();
    while (store.sipAuthIdTaken(sipAuthId)) sipAuthId = generateSipAuthId();
    // The SIP auth id was just drawn free, so it is not looked up a second time.
    const claims: Partial<UniqueClaims> = { extension, email: fields.email, dids: fields.dids, macs: fields.phones.map((p) => p.mac) };
    store.assertClaimsFree(who, claims, undefined);

    const credentials = {
      sipAuthId,
      sipPassword: generateSipPassword(),
      webPassword: generateWebPassword(),
      vmPin: fields.vmPin ?? generateVmPin(),
    };
    registerSecret(credentials.sipAuthId);
    registerSecret(credentials.sipPassword);
    registerSecret(credentials.webPassword);
    registerSecret(credentials.vmPin);

    const queued = input.sendWelcome && this.options.mail.welcome && fields.email !== null;
    const now = this.timestamp();
    // Spelled out (same key order as the fields, so the document reads the same): an object rest plus a
    // spread cost more than the rest of createUser, and could give each stored user a hidden class of its own.
    const user: StoredUser = {
      id: crypto.randomUUID(),
      extension,
      firstName: fields.firstName,
      lastName: fields.lastName,
      displayName: fields.displayName,
      email: fields.email,
      mobile: fields.mobile,
      outboundCallerId: fields.outboundCallerId,
      language: fields.language,
      department: fields.department,
      extraDepartments: fields.extraDepartments,
      role: fields.role,
      dids: fields.dids,
      vmEnabled: fields.vmEnabled,
      require2fa: fields.require2fa,
      hideInPhonebook: fields.hideInPhonebook,
      recordCalls: fields.recordCalls,
      phones: fields.phones,
      enabled: fields.enabled,
      options: fields.options,
      credentials,
      credentialsSetByUser: false,
      credentialsVersion: 1,
      createdAt: now,
      updatedAt: now,
      welcomeSentAt: null,
      welcomePending: queued,
    };
    store.insert(user);
    if (queued) this.welcomeQueue.push(user.id);
    return user;
  }

  async updateUser(id: string, changes: Partial<UserFields>): Promise<void> {
    const store = this.db();
    const user = store.getById(id);
    if (!user) throw new TerminalError(`no user with id ${id} in the PBX store`);
    const who = `extension ${user.extension}`;
    const given = changes as Record<string, unknown>;

    if ('extension' in given && given.extension !== undefined && String(given.extension) !== user.extension) {
      throw new TerminalError(
        `${who}: the extension cannot be changed once created (asked for ${String(given.extension)}); create a new user instead`,
        { field: 'extension' },
      );
    }
    if ('id' in given && given.id !== undefined && given.id !== user.id) {
      throw new TerminalError(`${who}: the id cannot be changed`, { field: 'id' });
    }

    // Normalise and compare first: an update that changes nothing is not a write (DESIGN §6.1).
    const next: Partial<Record<UserFieldName, unknown>> = {};
    for (const [key, value] of Object.entries(given)) {
      if (key === 'extension' || key === 'id' || value === undefined) continue;
      if (!isUserField(key)) throw new TerminalError(`${who}: unknown field "${key}"`, { field: key });
      // The PIN cannot be removed (the store always holds one); null means "leave it".
      if (key === 'vmPin' && value === null) continue;
      const normalised = normaliseField(key, value, who);
      const current = key === 'vmPin' ? user.credentials.vmPin : user[key as Exclude<UserFieldName, 'vmPin'>];
      if (!fieldEquals(normalised, current)) next[key] = normalised;
    }
    if ('department' in next || 'extraDepartments' in next) {
      const main = (next.department as string | undefined) ?? user.department;
      const extra = withoutMain((next.extraDepartments as string[] | undefined) ?? user.extraDepartments, main);
      if (fieldEquals(extra, user.extraDepartments)) delete next.extraDepartments;
      else next.extraDepartments = extra;
      this.assertDepartmentsExist(who, main, extra);
    }
    const fieldsChanged = Object.keys(next) as UserFieldName[];
    if (fieldsChanged.length === 0) return;

    const claims: Partial<UniqueClaims> = {};
    if ('email' in next) claims.email = next.email as string | null;
    if ('dids' in next) claims.dids = next.dids as string[];
    if ('phones' in next) claims.macs = (next.phones as Array<{ mac: string }>).map((p) => p.mac);
    store.assertClaimsFree(who, claims, user.id);

    const now = this.now().toISOString();
    store.update(user, (u) => {
      for (const field of fieldsChanged) {
        if (field === 'vmPin') {
          u.credentials.vmPin = next.vmPin as string;
          u.credentialsVersion++;
          registerSecret(u.credentials.vmPin);
        } else {
          (u as unknown as Record<string, unknown>)[field] = next[field];
        }
      }
      u.updatedAt = now;
    });
  }

  async deleteUsers(ids: string[]): Promise<DeleteResult[]> {
    const store = this.db();
    return ids.map((id) => (store.remove(id) ? { id } : { id, error: `no user with id ${id} in the PBX store` }));
  }

  /**
   * Sends the welcome e-mail again (3CX's "reset" in its user list), also when the first one failed.
   * @throws TerminalError when the user has no e-mail; the mailer's error when sending fails (the user
   *   stays `welcomePending`).
   */
  async sendWelcome(id: string): Promise<void> {
    const user = this.db().getById(id);
    if (!user) throw new TerminalError(`no user with id ${id} in the PBX store`);
    if (!user.email) {
      throw new TerminalError(`extension ${user.extension}: has no e-mail address, so no welcome e-mail can be sent`, { field: 'email' });
    }
    // This is the session's attempt at the user's mail. A mail left due was queued at open() for the first
    // commit, so `pbxsync welcome` (sendWelcome, then commit or close) sent a failed one a second time at once,
    // against the policy of one attempt per session (a failed mail stays pending for the next run).
    this.welcomeQueue = this.welcomeQueue.filter((queued) => queued !== id);
    await this.deliverWelcome(user);
  }

  pendingWelcomes(): number {
    return this.db().pendingWelcomeIds().length;
  }

  welcomesUnsure(): WelcomeUnsure[] {
    return this.db()
      .welcomesInDoubt()
      .map((u) => ({ extension: u.extension, ...(u.email ? { email: u.email } : {}), since: u.welcomeSendingAt! }));
  }

  /** The user with this id, without secrets, with status tags. */
  describeUser(id: string): UserView | undefined {
    const user = this.db().getById(id);
    return user && toUserView(user);
  }

  statusTags(id: string): string[] {
    const user = this.db().getById(id);
    return user ? statusTags(user) : [];
  }

  /** The user with this extension, without secrets, with status tags. */
  getUser(extension: string): UserView | undefined {
    const user = this.db().getByExtension(extension);
    return user && toUserView(user);
  }

  /**
   * Makes the writes durable, then sends the welcome e-mails of users whose creation now is (and commits
   * their sent state). A user whose mail fails stays `welcomePending`; after a few failures in a row the
   * rest of the queue waits for the next session (the mail server is likely down), not one warning each.
   */
  async commit(): Promise<void> {
    const store = this.db();
    // Taken before the commit starts: users created while it writes (apply runs on) are not in this commit,
    // so their mails wait for the next one.
    const ids = this.welcomeQueue;
    this.welcomeQueue = [];
    try {
      await store.commit();
    } catch (err) {
      // Not durable: their mails wait for a commit that succeeds.
      this.welcomeQueue = ids.concat(this.welcomeQueue);
      throw err;
    }
    if (ids.length === 0 || store.readOnly) return;
    await this.drainWelcomes(ids);
    await store.commit();
  }

  /**
   * Sends the welcome e-mails of `ids`, {@link WELCOME_LANES} at a time. Each round is marked
   * `welcomeSendingAt` and committed before its mails go out, and the round's outcomes (sent, or still
   * pending) are committed with the next round's marks (the last ones by commit()). So a crash re-sends at
   * most the round in flight, not every mail of the checkpoint. Exactly once is impossible here: between the
   * server's acceptance and its commit a mail is in doubt, and an in-doubt mail is sent again at the next
   * open (logged there): a second mail with the same credentials beats a user who never gets any.
   */
  private async drainWelcomes(ids: string[]): Promise<void> {
    const store = this.db();
    const { signal, logger } = this.options;
    let next = 0;
    let failuresInARow = 0;
    let paused = false;
    while (!paused && next < ids.length) {
      if (signal?.aborted) {
        logger.info('stopping: welcome e-mails not sent yet stay pending for the next start', { pending: store.pendingWelcomeIds().length });
        return;
      }
      const at = this.now().toISOString();
      const round: StoredUser[] = [];
      while (round.length < WELCOME_LANES && next < ids.length) {
        const user = store.getById(ids[next++]!);
        if (!user || !user.welcomePending || !user.email) continue;
        user.welcomeSendingAt = at;
        store.touch(user);
        round.push(user);
      }
      if (round.length === 0) break;
      await store.commit();
      const sent = await settledUnlessStopped(round.map((user) => this.deliverWelcome(user).then(() => true, () => false)), signal);
      if (!sent) {
        logger.warn('stopping: welcome e-mails still with the mail server after the grace period; they are sent again at the next start', {
          extensions: round.map((u) => u.extension),
          graceMs: STOP_MAIL_GRACE_MS,
        });
        return;
      }
      for (const ok of sent) {
        if (ok) failuresInARow = 0;
        else if (++failuresInARow >= WELCOME_FAILURES_BEFORE_PAUSE) paused = true;
      }
    }
    if (paused) {
      const left = ids.length - next;
      logger.warn('welcome e-mails paused after repeated failures; they stay pending for the next run', {
        pendingNotTried: left,
      });
    }
  }

  writeCount(): number {
    return this.store?.writeCount ?? 0;
  }

  /** Commits what is left, releases the lock and closes the mail transport. */
  async close(): Promise<void> {
    try {
      if (this.store && !this.store.readOnly && this.welcomeQueue.length > 0) await this.commit();
    } finally {
      await this.closeStore();
    }
  }

  private async closeStore(): Promise<void> {
    try {
      await this.store?.close();
    } finally {
      await this.mailer.close();
    }
  }

  private db(): EmbeddedStore {
    if (!this.store) throw new TerminalError('the embedded PBX store is not open (call open() first)');
    return this.store;
  }

  private assertDepartmentsExist(who: string, main: string, extra: readonly string[]): void {
    const store = this.db();
    for (const name of [main, ...extra]) {
      if (!store.hasDepartment(name)) {
        throw new TerminalError(`${who}: department "${name}" does not exist (create it first, or let the mapping create missing departments)`, {
          field: name === main ? 'department' : 'extraDepartments',
        });
      }
    }
  }

  /**
   * Sends the welcome e-mail and records the outcome on the user. A failure marks the user
   * `welcomePending`, logs a warning without secrets, and is rethrown (the queue drain counts it).
   */
  private async deliverWelcome(user: StoredUser): Promise<void> {
    const store = this.db();
    const message = welcomeMessage(user, user.credentials, { from: this.options.mail.from, webClientUrl: this.options.webClientUrl });
    try {
      await this.mailer.send(message);
    } catch (err) {
      // Refused or never delivered: no longer in doubt, still due.
      if (store.getById(user.id) === user && (!user.welcomePending || user.welcomeSendingAt !== undefined)) {
        user.welcomePending = true;
        user.welcomeSendingAt = undefined;
        store.touch(user);
      }
      this.options.logger.warn('welcome e-mail not sent; it stays pending until sendWelcome succeeds', {
        extension: user.extension,
        to: user.email,
        error: describeError(err),
      });
      throw err instanceof TerminalError || err instanceof RetryableError
        ? err
        : new RetryableError(`extension ${user.extension}: the welcome e-mail could not be sent: ${describeError(err)}`, { cause: err });
    }
    if (store.getById(user.id) !== user) return;
    user.welcomeSentAt = this.now().toISOString();
    user.welcomePending = false;
    user.welcomeSendingAt = undefined;
    store.touch(user);
  }
}

/**
 * Waits for `work`; once `signal` aborts, for at most {@link STOP_MAIL_GRACE_MS} more. Undefined when that ran
 * out first (the work goes on unawaited).
 */
async function settledUnlessStopped<T>(work: Array<Promise<T>>, signal: AbortSignal | undefined): Promise<T[] | undefined> {
  const all = Promise.all(work);
  if (!signal) return all;
  let timer: NodeJS.Timeout | undefined;
  const onAbort = (resolve: (v: undefined) => void) => () => {
    timer = setTimeout(() => resolve(undefined), STOP_MAIL_GRACE_MS);
  };
  let listener: (() => void) | undefined;
  const gaveUp = new Promise<undefined>((resolve) => {
    listener = onAbort(resolve);
    if (signal.aborted) listener();
    else signal.addEventListener('abort', listener, { once: true });
  });
  try {
    return await Promise.race([all, gaveUp]);
  } finally {
    if (listener) signal.removeEventListener('abort', listener);
    clearTimeout(timer);
  }
}

/** The normalised PbxUser of a stored user: fresh arrays, frozen options, so callers cannot alter the store. */
function toPbxUser(u: StoredUser): PbxUser {
  return {
    id: u.id,
    extension: u.extension,
    firstName: u.firstName,
    lastName: u.lastName,
    displayName: u.displayName,
    email: u.email,
    mobile: u.mobile,
    outboundCallerId: u.outboundCallerId,
    language: u.language,
    department: u.department,
    // Lists are copied (an empty one is the shared frozen list); options are frozen in the store, so shared.
    extraDepartments: copyList(u.extraDepartments),
    role: u.role,
    dids: copyList(u.dids),
    vmEnabled: u.vmEnabled,
    // A SECRET_FIELD: returned so the planner can compare a PIN the mapping manages; plans mask it.
    vmPin: u.credentials.vmPin,
    require2fa: u.require2fa,
    hideInPhonebook: u.hideInPhonebook,
    recordCalls: u.recordCalls,
    phones: u.phones.length ? u.phones.map((p) => ({ ...p })) : noItems(),
    enabled: u.enabled,
    options: Object.isFrozen(u.options) ? u.options : { ...u.options },
  };
}

function copyList<T>(list: T[]): T[] {
  return list.length ? [...list] : noItems();
}

function toUserView(u: StoredUser): UserView {
  const { vmPin: _pin, ...rest } = toPbxUser(u);
  return {
    ...rest,
    status: statusTags(u),
    createdAt: u.createdAt,
    updatedAt: u.updatedAt,
    welcomeSentAt: u.welcomeSentAt,
    welcomePending: u.welcomePending,
    credentialsVersion: u.credentialsVersion,
  };
}
