import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Low } from 'lowdb';
import { rewriteDue } from '../../util/compaction.js';
import { lockResource } from '../../util/lock.js';
import { ConflictError, LockedError, TerminalError, describeError } from '../../errors/index.js';
import type { Logger } from '../../log.js';
import type { UserFields } from '../../model/index.js';
import { JsonDocumentFile, forEachLine } from './document.js';
import { BufferedFileWriter, WRITE_BUFFER_BYTES } from '../../util/buffered-writer.js';
import { tightenMode } from '../../util/fs.js';
import { DEFAULT_DEPARTMENT, compareExtensions, describeHolder, type StoredCredentials } from './rules.js';

/**
 * The embedded PBX store's persistence: one lowdb JSON document, O(1) indexes over it, and a lock so one
 * process owns it.
 *
 * Durability works in two layers so a 100,000-user import stays linear:
 * - the **document** (`pbx.json`, lowdb `write()` through JsonDocumentFile: temp file + rename) is the
 *   whole store;
 * - the **journal** (`pbx.json.journal`, one JSON text per commit holding the users changed by that commit, a user a line)
 *   makes a commit durable without rewriting the whole document each time.
 * The document is rewritten ("compacted") only when most of what the two hold is superseded (see
 * rewriteDue); so an import writes each user once, not (commits × size). The two files together are
 * the store, also after close: folding a journal of live users into the document would only serialise every
 * user a second time. Opening reads the document, then replays journal lines newer than the document's `seq`.
 * A torn last commit (a crash while appending) belongs to a commit that never returned and is dropped.
 */

/** Document format version. */
export const STORE_VERSION = 1;

/** A department as stored. */
export interface StoredDepartment {
  name: string;
  createdAt: string;
}

/** A user as stored: the managed fields (the PIN lives in `credentials`), credentials and bookkeeping. */
export interface StoredUser extends Omit<UserFields, 'vmPin'> {
  /** UUID. */
  id: string;
  /** Digits; immutable. */
  extension: string;
  credentials: StoredCredentials;
  /** False while the credentials are the generated ones. */
  credentialsSetByUser: boolean;
  /** Incremented whenever a credential changes (provisioning re-renders on a change). */
  credentialsVersion: number;
  createdAt: string;
  updatedAt: string;
  /** When the last welcome e-mail went out, or null. */
  welcomeSentAt: string | null;
  /** A welcome e-mail was due but could not be sent; `sendWelcome` retries it. */
  welcomePending: boolean;
  /**
   * Set (durably) just before the welcome e-mail goes to the mail server, cleared when its outcome is recorded.
   * Still set when the store is opened: the process stopped while the server had the mail, so it may or may
   * not have arrived (see EmbeddedTarget.drainWelcomes). Absent from most users (JSON leaves undefined out).
   */
  welcomeSendingAt?: string;
}

/** The lowdb document. */
export interface StoreDocument {
  version: number;
  /** Random per store; e.g. the provisioning engine's unguessable path derives from it. */
  installId: string;
  /** The last journal sequence number folded into this document. */
  seq: number;
  departments: StoredDepartment[];
  users: StoredUser[];
}

/** One journal commit: the effect of one commit (written by appendJournalEntry in this key order). */
interface JournalEntry {
  seq: number;
  /** Whole department list, when it changed. */
  departments?: StoredDepartment[];
  upsert: StoredUser[];
  delete: string[];
}

/** Options of EmbeddedStore.open. */
export interface StoreOpenOptions {
  logger: Logger;
  /** Read without taking the lock; every write is refused (export, status, plan). */
  readOnly?: boolean;
  /**
   * A lock not refreshed for this long is stale and may be taken over (a process killed with -9 cannot
   * release it). proper-lockfile refreshes it every half of this. Default 10 s; minimum 2 s.
   */
  lockStaleMs?: number;
  /** Journal size (bytes) below which the document is never rewritten. Default 8 MiB. */
  compactMinBytes?: number;
}

/** Uniqueness keys a user claims, checked and indexed together. */
export interface UniqueClaims {
  extension: string;
  email: string | null;
  dids: readonly string[];
  macs: readonly string[];
  sipAuthId: string;
}

/**
 * The store: users in memory with indexes by id, extension, e-mail, DID, MAC and SIP auth id. Mutations
 * change memory and mark what is dirty; `commit()` makes them durable. Callers validate field formats
 * (rules.ts) and call `assertClaimsFree` before `insert`/`reindex`, so a refused write changes nothing.
 */
export class EmbeddedStore {
  readonly file: string;
  readonly readOnly: boolean;
  private readonly logger: Logger;
  private readonly journalFile: string;
  private readonly compactMinBytes: number;
  private readonly db: Low<StoreDocument>;

  private installIdValue = '';
  private seq = 0;
  private readonly departmentsByName = new Map<string, StoredDepartment>();
  private readonly byIdMap = new Map<string, StoredUser>();
  private readonly byExtension = new Map<string, StoredUser>();
  private readonly byEmail = new Map<string, StoredUser>();
  private readonly byDid = new Map<string, StoredUser>();
  private readonly byMac = new Map<string, StoredUser>();
  private readonly bySipAuthId = new Map<string, StoredUser>();

  private readonly dirtyUsers = new Set<string>();
  private readonly deletedUsers = new Set<string>();
  private departmentsDirty = false;
  /** True until the document exists on disk (a fresh store writes it on first commit). */
  private documentMissing = true;
  private documentBytes = 0;
  /** Users in the document as last read or written (with documentBytes: the bytes a user takes there). */
  private documentUsers = 0;
  private journalBytes = 0;
  /** The buffer journal lines are gathered in (commits run one at a time, so one is enough). */
  private journalBuffer?: Buffer;
  /** User records in the journal (a user changed twice counts twice). */
  private journalUsers = 0;
  private writes = 0;
  private commitChain: Promise<unknown> = Promise.resolve();
  private release?: () => Promise<void>;
  private lockLost?: Error;
  private closed = false;

  private constructor(file: string, options: StoreOpenOptions) {
    this.file = path.resolve(file);
    this.readOnly = !!options.readOnly;
    this.logger = options.logger;
    this.journalFile = `${this.file}.journal`;
    this.compactMinBytes = options.compactMinBytes ?? 8 * 1024 * 1024;
    this.db = new Low<StoreDocument>(new JsonDocumentFile(this.file), emptyDocument(''));
  }

  /**
   * Opens the store: takes the lock (unless read-only), reads the document and replays the journal.
   * A missing file is an empty store (written on the first commit).
   * @throws LockedError when another process holds the store.
   */
  static async open(file: string, options: StoreOpenOptions): Promise<EmbeddedStore> {
    const store = new EmbeddedStore(file, options);
    if (!store.readOnly) await store.lock(options.lockStaleMs ?? 10_000);
    try {
      await store.load();
    } catch (err) {
      await store.release?.().catch(() => undefined);
      throw err;
    }
    return store;
  }

  private async lock(staleMs: number): Promise<void> {
    await fs.mkdir(path.dirname(this.file), { recursive: true });
    try {
      // realpath: false because the document may not exist yet; the lock is the directory `<file>.lock`.
      this.release = await lockResource(this.file, {
        lockPath: `${this.file}.lock`,
        staleMs: Math.max(2000, staleMs),
        lockedMessage:
          `the PBX store ${this.file} is in use by another pbxsync process (lock ${this.file}.lock); ` +
          'stop that process first',
        onCompromised: (err) => {
          // WARNING: the default handler throws from a timer and kills the daemon; instead refuse further
          // commits, since another process may now own the store.
          this.lockLost = err;
          this.logger.error('lost the lock on the PBX store; refusing further writes', { file: this.file, error: err.message });
        },
      });
    } catch (err) {
      if (err instanceof LockedError) throw err;
      throw new TerminalError(`cannot lock the PBX store ${this.file}: ${describeError(err)}`, { cause: err });
    }
  }

  private async load(): Promise<void> {
    // A read-only reader races a writer's compaction (new document, then emptied journal); reading the
    // document's inode before and after tells whether the pair read belongs together.
    for (let attempt = 0; ; attempt++) {
      const before = await inode(this.file);
      await this.db.read();
      const journal = await readJournal(this.journalFile);
      const after = await inode(this.file);
      if (before === after || attempt >= 4) {
        this.build(this.db.data, journal.entries, before !== undefined);
        this.journalBytes = journal.goodBytes;
        this.journalUsers = journal.entries.reduce((n, e) => n + e.upsert.length, 0);
        if (journal.tornBytes > 0 && !this.readOnly) {
          this.logger.warn('dropped an incomplete last commit from the PBX store journal (the process stopped while writing it)', {
            file: this.journalFile,
          });
          await fs.truncate(this.journalFile, journal.goodBytes);
        }
        break;
      }
    }
    if (!this.readOnly) await this.tightenModes();
    this.documentBytes = (await fs.stat(this.file).catch(() => undefined))?.size ?? 0;
    this.documentUsers = this.db.data.users.length;
    // Stop holding the parsed document twice (once as the array, once through the maps).
    this.db.data = emptyDocument(this.installIdValue);
  }

  /** Both files hold every user's generated credentials: owner only, also when an older version made them 0644. */
  private async tightenModes(): Promise<void> {
    for (const file of [this.file, this.journalFile]) {
      const was = await tightenMode(file);
      if (was !== undefined) {
        this.logger.warn('the PBX store file was readable by others; made it readable by its owner only (it holds credentials)', {
          file,
          mode: `0${was.toString(8)}`,
        });
      }
    }
  }

  private build(doc: StoreDocument, entries: JournalEntry[], documentExists: boolean): void {
    if (documentExists && (doc.version !== STORE_VERSION || !Array.isArray(doc.users) || !Array.isArray(doc.departments))) {
      throw new TerminalError(`${this.file} is not a pbxsync store of version ${STORE_VERSION}`);
    }
    this.documentMissing = !documentExists;
    this.installIdValue = doc.installId || crypto.randomUUID();
    this.seq = doc.seq ?? 0;
    const departments = new Map<string, StoredDepartment>();
    for (const d of doc.departments) departments.set(d.name, d);
    const users = new Map<string, StoredUser>();
    for (const u of doc.users) users.set(u.id, u);
    for (const e of entries) {
      if (e.seq <= this.seq) continue;
      if (e.departments) {
        departments.clear();
        for (const d of e.departments) departments.set(d.name, d);
      }
      for (const u of e.upsert) users.set(u.id, u);
      for (const id of e.delete) users.delete(id);
      this.seq = e.seq;
    }
    for (const d of departments.values()) this.departmentsByName.set(d.name, d);
    if (!this.departmentsByName.has(DEFAULT_DEPARTMENT)) {
      this.departmentsByName.set(DEFAULT_DEPARTMENT, { name: DEFAULT_DEPARTMENT, createdAt: new Date().toISOString() });
      this.departmentsDirty = true;
    }
    for (const u of users.values()) {
      // Stored options are frozen (rules.ts): listings share them instead of copying.
      if (u.options && typeof u.options === 'object') Object.freeze(u.options);
      try {
        this.assertClaimsFree(`extension ${u.extension}`, claimsOf(u), undefined);
      } catch (err) {
        throw new TerminalError(`${this.file} is inconsistent: ${(err as Error).message}; fix the file by hand`, { cause: err });
      }
      this.byIdMap.set(u.id, u);
      this.index(u);
    }
    if (this.documentMissing) this.departmentsDirty = true;
  }

  /** Random id of this store, stable for its lifetime. */
  get installId(): string {
    return this.installIdValue;
  }

  /** Users whose welcome e-mail is still due (queued or failed), in extension order. */
  pendingWelcomeIds(): string[] {
    const due: StoredUser[] = [];
    for (const u of this.byIdMap.values()) if (u.welcomePending && u.email) due.push(u);
    return due.sort((a, b) => compareExtensions(a.extension, b.extension)).map((u) => u.id);
  }

  /** Users whose welcome e-mail was with the mail server when a process stopped (see StoredUser.welcomeSendingAt). */
  welcomesInDoubt(): StoredUser[] {
    const out: StoredUser[] = [];
    for (const u of this.byIdMap.values()) if (u.welcomeSendingAt !== undefined && u.welcomePending) out.push(u);
    return out.sort((a, b) => compareExtensions(a.extension, b.extension));
  }

  /** Number of users. */
  get size(): number {
    return this.byIdMap.size;
  }

  /** The user with this id. */
  getById(id: string): StoredUser | undefined {
    return this.byIdMap.get(id);
  }

  /** The user with this extension. */
  getByExtension(extension: string): StoredUser | undefined {
    return this.byExtension.get(extension);
  }

  /** All user ids in extension order (a snapshot: later changes do not affect the returned array). */
  idsInExtensionOrder(): string[] {
    const users = [...this.byIdMap.values()].sort((a, b) => compareExtensions(a.extension, b.extension));
    return users.map((u) => u.id);
  }

  /** Department names, sorted. */
  departmentNames(): string[] {
    return [...this.departmentsByName.keys()].sort();
  }

  /** True when the department exists (names are case-sensitive, as the mapping writes them). */
  hasDepartment(name: string): boolean {
    return this.departmentsByName.has(name);
  }

  /** Adds a department; returns false when it existed. */
  addDepartment(name: string, now: string): boolean {
    this.assertWritable();
    if (this.departmentsByName.has(name)) return false;
    this.departmentsByName.set(name, { name, createdAt: now });
    this.departmentsDirty = true;
    return true;
  }

  /**
   * Throws ConflictError when another user (not `selfId`) holds any of the claims. The message names the
   * user being written, the field and the holder:
   * `extension 1001: e-mail anna@x.com is already used by extension 1002 (Bob Stone)`.
   */
  assertClaimsFree(who: string, claims: Partial<UniqueClaims>, selfId: string | undefined): void {
    const check = (index: Map<string, StoredUser>, key: string, field: string, label: string): void => {
      const holder = index.get(key);
      if (holder && holder.id !== selfId) {
        const named = describeHolder(holder);
        throw new ConflictError(`${who}: ${label} is already used by ${named}`, { field, holder: named });
      }
    };
    if (claims.extension !== undefined) check(this.byExtension, claims.extension, 'extension', `extension ${claims.extension}`);
    if (claims.email) check(this.byEmail, claims.email, 'email', `e-mail ${claims.email}`);
    for (const did of claims.dids ?? []) check(this.byDid, did, 'dids', `DID ${did}`);
    for (const mac of claims.macs ?? []) check(this.byMac, mac, 'phones', `MAC ${mac}`);
    if (claims.sipAuthId !== undefined) check(this.bySipAuthId, claims.sipAuthId, 'sipAuthId', 'the SIP authentication id');
  }

  /** True when a SIP auth id is taken (the generator draws again). */
  sipAuthIdTaken(sipAuthId: string): boolean {
    return this.bySipAuthId.has(sipAuthId);
  }

  /** Adds a new user. The caller has validated it (assertClaimsFree included). */
  insert(user: StoredUser): void {
    this.assertWritable();
    this.byIdMap.set(user.id, user);
    this.index(user);
    this.deletedUsers.delete(user.id);
    this.dirtyUsers.add(user.id);
  }

  /**
   * Changes a user in place: `mutate` runs between dropping the user's old index entries and adding the
   * new ones, so claims (e-mail, DIDs, MACs) move with it. The caller has checked the new claims.
   */
  update(user: StoredUser, mutate: (user: StoredUser) => void): void {
    this.assertWritable();
    this.unindex(user);
    try {
      mutate(user);
    } finally {
      this.index(user);
    }
    this.dirtyUsers.add(user.id);
  }

  /** Marks a user changed when only bookkeeping (welcome state) moved. */
  touch(user: StoredUser): void {
    if (this.readOnly) return;
    this.dirtyUsers.add(user.id);
  }

  /** Removes a user; false when there was none. */
  remove(id: string): boolean {
    this.assertWritable();
    const user = this.byIdMap.get(id);
    if (!user) return false;
    this.unindex(user);
    this.byIdMap.delete(id);
    this.dirtyUsers.delete(id);
    this.deletedUsers.add(id);
    return true;
  }

  /** True when something changed since the last commit. */
  get dirty(): boolean {
    return this.departmentsDirty || this.dirtyUsers.size > 0 || this.deletedUsers.size > 0;
  }

  /** Commits that reached the disk. */
  get writeCount(): number {
    return this.writes;
  }

  /**
   * Makes every change so far durable. Does nothing (and counts nothing) when nothing changed. Commits run
   * one at a time; what changes while one is writing goes into the next.
   */
  commit(): Promise<void> {
    const next = this.commitChain.then(() => this.commitNow());
    this.commitChain = next.catch(() => undefined);
    return next;
  }

  private async commitNow(): Promise<void> {
    if (this.readOnly || !this.dirty) return;
    if (this.lockLost) {
      throw new LockedError(`the lock on the PBX store ${this.file} was lost; not writing`, { cause: this.lockLost });
    }
    // A change set that would make the compaction due anyway (most users changed at once) goes straight into
    // a new document: durable the same way (atomic rename, then the journal is emptied), without writing
    // every changed user twice.
    const changes = this.dirtyUsers.size + this.deletedUsers.size;
    if (this.documentMissing || this.compactionDue(this.bytesPerUser() * changes, changes)) {
      await this.writeDocument();
      this.writes++;
      return;
    }
    // Take the change set synchronously: operations that run while this commit awaits go to the next one.
    const seq = this.seq + 1;
    const upsert: StoredUser[] = [];
    for (const id of this.dirtyUsers) {
      const u = this.byIdMap.get(id);
      if (u) upsert.push(u);
    }
    const deleted = [...this.deletedUsers];
    const departments = this.departmentsDirty ? [...this.departmentsByName.values()] : undefined;
    const taken = { users: [...this.dirtyUsers], deleted, departments: this.departmentsDirty };
    this.dirtyUsers.clear();
    this.deletedUsers.clear();
    this.departmentsDirty = false;
    let written = 0;
    try {
      this.journalBuffer ??= Buffer.allocUnsafe(WRITE_BUFFER_BYTES);
      written = await appendJournalEntry(this.journalBuffer, this.journalFile, seq, upsert, deleted, departments);
    } catch (err) {
      // Nothing was acknowledged: cut off what part of the line reached the file (so the next commit's line
      // starts clean) and put the change set back so the next commit carries it.
      await fs.truncate(this.journalFile, this.journalBytes).catch(() => undefined);
      for (const id of taken.users) if (this.byIdMap.has(id)) this.dirtyUsers.add(id);
      for (const id of taken.deleted) if (!this.byIdMap.has(id)) this.deletedUsers.add(id);
      if (taken.departments) this.departmentsDirty = true;
      throw new TerminalError(`cannot write the PBX store journal ${this.journalFile}: ${describeError(err)}`, { cause: err });
    }
    this.seq = seq;
    this.journalBytes += written;
    this.journalUsers += upsert.length;
    this.writes++;
    if (this.compactionDue(0, 0)) await this.writeDocument();
  }

  /** Average bytes of a user record, from the document, else from the journal (0 when neither has one). */
  private bytesPerUser(): number {
    if (this.documentUsers > 0) return this.documentBytes / this.documentUsers;
    return this.journalUsers > 0 ? this.journalBytes / this.journalUsers : 0;
  }

  /**
   * True when the journal, grown by `extraBytes` in `extraRecords` more user records, makes rewriting the
   * document due (see rewriteDue). A fold at close, which the store once did as well, cost a 100,000-user
   * import ~0.5 s and a second 100 MB write.
   */
  private compactionDue(extraBytes: number, extraRecords: number): boolean {
    return rewriteDue({
      logBytes: this.journalBytes + extraBytes,
      minLogBytes: this.compactMinBytes,
      records: this.documentUsers + this.journalUsers + extraRecords,
      live: this.byIdMap.size,
    });
  }

  /**
   * Rewrites the whole document (lowdb write(): temp file + rename) and empties the journal it now holds.
   * The document is written in chunks, so operations may run meanwhile: each user is serialised whole, and
   * whatever changes during the write stays dirty for the next commit (journal replay upserts whole users).
   */
  private async writeDocument(): Promise<void> {
    const users = [...this.byIdMap.values()].sort((a, b) => compareExtensions(a.extension, b.extension));
    this.db.data = {
      version: STORE_VERSION,
      installId: this.installIdValue,
      seq: this.seq,
      departments: [...this.departmentsByName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
      users,
    };
    const deleted = [...this.deletedUsers];
    this.dirtyUsers.clear();
    this.deletedUsers.clear();
    this.departmentsDirty = false;
    try {
      await this.db.write();
    } catch (err) {
      // Everything stays to be written: all users, and deletions not yet in the journal (the old document
      // may still hold those users).
      for (const u of users) if (this.byIdMap.has(u.id)) this.dirtyUsers.add(u.id);
      for (const id of deleted) if (!this.byIdMap.has(id)) this.deletedUsers.add(id);
      this.departmentsDirty = true;
      throw new TerminalError(`cannot write the PBX store ${this.file}: ${describeError(err)}`, { cause: err });
    } finally {
      this.db.data = emptyDocument(this.installIdValue);
    }
    this.documentMissing = false;
    this.documentBytes = (await fs.stat(this.file)).size;
    this.documentUsers = users.length;
    this.journalUsers = 0;
    if (this.journalBytes > 0) {
      // The document holds every journalled commit (its seq says so), so a crash before this truncate
      // only leaves lines that replay skips.
      await fs.truncate(this.journalFile, 0).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
      this.journalBytes = 0;
    }
  }

  /**
   * Commits what is left and releases the lock; the journal stays (see rewriteDue). Safe to call
   * twice.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.commit();
      await this.commitChain;
    } finally {
      const release = this.release;
      this.release = undefined;
      if (release) await release().catch((err: Error) => this.logger.warn('could not release the PBX store lock', { file: this.file, error: err.message }));
    }
  }

  private assertWritable(): void {
    if (this.readOnly) throw new TerminalError(`the PBX store ${this.file} was opened read-only`);
    if (this.closed) throw new TerminalError(`the PBX store ${this.file} is closed`);
  }

  private index(u: StoredUser): void {
    this.byExtension.set(u.extension, u);
    if (u.email) this.byEmail.set(u.email, u);
    for (const d of u.dids) this.byDid.set(d, u);
    for (const p of u.phones) this.byMac.set(p.mac, u);
    this.bySipAuthId.set(u.credentials.sipAuthId, u);
  }

  private unindex(u: StoredUser): void {
    this.byExtension.delete(u.extension);
    if (u.email) this.byEmail.delete(u.email);
    for (const d of u.dids) this.byDid.delete(d);
    for (const p of u.phones) this.byMac.delete(p.mac);
    this.bySipAuthId.delete(u.credentials.sipAuthId);
  }
}

/** The claims a stored user holds. */
export function claimsOf(u: Pick<StoredUser, 'extension' | 'email' | 'dids' | 'phones' | 'credentials'>): UniqueClaims {
  return { extension: u.extension, email: u.email, dids: u.dids, macs: u.phones.map((p) => p.mac), sipAuthId: u.credentials.sipAuthId };
}

function emptyDocument(installId: string): StoreDocument {
  return { version: STORE_VERSION, installId, seq: 0, departments: [], users: [] };
}

async function inode(file: string): Promise<number | undefined> {
  return (await fs.stat(file).catch(() => undefined))?.ino;
}

/**
 * The first line of a commit in the journal's line layout; its users follow one per line, then the tail line
 * {@link COMMIT_TAIL}… closes it.
 */
const COMMIT_HEAD = /^\{"seq":(\d+),"upsert":\[$/;
const COMMIT_TAIL = '],"delete":';

/**
 * Appends one commit to the journal and syncs it; returns the bytes written. The text is the JSON of
 * {@link JournalEntry} (`{"seq":…,"upsert":[…],"delete":[…],"departments":[…]}`) laid out like the document:
 * the head, one user per line, then the tail line. So a load reads it a user at a time (a single-line commit
 * of a thousand users was a ~1 MB string per line, all garbage in V8's large-object space by the end of a
 * load). The users are serialised one at a time into `buffer`: a commit of a thousand users is one write
 * call and one sync. Each user is serialised whole, as it is when the buffer takes it; one changed while a
 * full buffer is written is also dirty for the next commit, whose lines replay after these. Until the tail
 * line's `\n` is on disk the commit is torn, and replay drops it.
 */
async function appendJournalEntry(
  buffer: Buffer,
  file: string,
  seq: number,
  upsert: StoredUser[],
  deleted: string[],
  departments: StoredDepartment[] | undefined,
): Promise<number> {
  // 0600 (applies when the append creates the file): the journal holds what the document holds, credentials too.
  const handle = await fs.open(file, 'a', 0o600);
  try {
    const out = new BufferedFileWriter(handle, buffer);
    await out.add(`{"seq":${JSON.stringify(seq)},"upsert":[\n`);
    await out.addJsonLines(upsert);
    let tail = `${COMMIT_TAIL}${JSON.stringify(deleted)}`;
    if (departments) tail += `,"departments":${JSON.stringify(departments)}`;
    await out.add(tail + '}\n');
    await out.flush();
    await handle.datasync();
    return out.written;
  } finally {
    await handle.close();
  }
}

/**
 * Reads the journal a line at a time: commits in the line layout (see appendJournalEntry) and single-line
 * commits, which versions before it wrote. What follows the last complete commit (a commit without its
 * tail line, a line without its newline: the process stopped while appending) is measured, not replayed.
 */
async function readJournal(file: string): Promise<{ entries: JournalEntry[]; goodBytes: number; tornBytes: number }> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { entries: [], goodBytes: 0, tornBytes: 0 };
    throw err;
  }
  const entries: JournalEntry[] = [];
  let lineNo = 0;
  let goodBytes = 0;
  /** The commit whose user lines are being read, if any. */
  let open: { seq: number; upsert: StoredUser[] } | undefined;
  const damaged = (err?: unknown) => new TerminalError(`${file}: line ${lineNo} is not valid JSON; the journal is damaged`, { cause: err });
  const parse = <T>(text: string): T => {
    try {
      return JSON.parse(text) as T;
    } catch (err) {
      throw damaged(err);
    }
  };
  try {
    const { size } = await forEachLine(handle, (line, endOffset) => {
      lineNo++;
      if (open) {
        if (line.startsWith(COMMIT_TAIL)) {
          // `{"upsert":[` + `],"delete":[…],…}` is the commit's own JSON without its users.
          const rest = parse<Pick<JournalEntry, 'delete' | 'departments'>>(`{"upsert":[${line}`);
          if (!Array.isArray(rest.delete)) throw damaged();
          entries.push({ seq: open.seq, departments: rest.departments, upsert: open.upsert, delete: rest.delete });
          open = undefined;
          goodBytes = endOffset;
        } else {
          open.upsert.push(parse<StoredUser>(line.endsWith(',') ? line.slice(0, -1) : line));
        }
        return true;
      }
      if (line.trim() === '') {
        goodBytes = endOffset;
        return true;
      }
      const head = COMMIT_HEAD.exec(line);
      if (head) open = { seq: Number(head[1]), upsert: [] };
      else {
        entries.push(parse<JournalEntry>(line));
        goodBytes = endOffset;
      }
      return true;
    });
    return { entries, goodBytes, tornBytes: size - goodBytes };
  } finally {
    await handle.close();
  }
}

/**
 * A token that changes whenever the store on disk changes: every commit appends to the journal (it grows)
 * or writes a new document (a new inode, renamed in). Read from file metadata only, so asking costs no
 * load. Compared, never interpreted; nanosecond mtimes keep a rewrite of the same size apart.
 */
export async function storeRevision(file: string): Promise<string> {
  const part = async (f: string): Promise<string> => {
    const st = await fs.stat(f, { bigint: true }).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    return st ? `${st.ino}.${st.size}.${st.mtimeNs}` : '-';
  };
  const resolved = path.resolve(file);
  return `${await part(resolved)}/${await part(`${resolved}.journal`)}`;
}
