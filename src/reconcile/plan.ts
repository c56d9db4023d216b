import { createHash } from 'node:crypto';
import { ExtensionAllocator, extensionProblem } from '../mapping/numbering.js';
import type { AdoptionMatch, DesiredUser, ExtensionRequest, NumberRange } from '../mapping/types.js';
import { keyString, noItems, type PbxUser, type RecordIssue, type UserFieldName, type UserFields } from '../model/index.js';
import { FIELD_LABELS, FIELD_ORDER, canonicalJson, joinHuman, normaliseField, sameField, userName } from './fields.js';
import type {
  ActualState,
  Binding,
  NumberingPolicy,
  Operation,
  OperationKind,
  Plan,
  PlanState,
  PlanSummary,
  SafetyPolicy,
  SourceReadResult,
} from './types.js';

/** Inputs of {@link plan}. Everything the planner knows; it reads nothing else. */
export interface PlanInput {
  runId: string;
  sources: SourceReadResult[];
  actual: ActualState;
  state: PlanState;
  numbering: NumberingPolicy;
  /** Accepted for symmetry with the guards; the planner itself never holds a plan (see applyGuards). */
  safety: SafetyPolicy;
  /**
   * Compute `basis` (default true). Hashing every desired and actual user is a noticeable share of a
   * 100,000-user no-op sync, and only a saved plan needs it: callers that save plans only when held may
   * pass false and call computeBasis themselves (basis is then '').
   */
  basis?: boolean;
}

/** Order of operation kinds in a plan (and in its printed form). */
export const KIND_ORDER: readonly OperationKind[] = ['delete', 'disable', 'enable', 'update', 'adopt', 'create', 'conflict'];

const DAY_MS = 86_400_000;

/** The department that always exists in the PBX. */
const DEFAULT_DEPARTMENT = 'DEFAULT';

/**
 * Joins pieces into one flat string. WARNING: a template literal or `+` of a long result makes a V8 cons
 * string, a tree of the pieces; kept in every operation of a 100,000-create plan (its id and reason) those
 * trees were ~7 objects and ~30 MB, twice what the same text takes flat. Array join writes one string.
 */
function flat(...pieces: string[]): string {
  return pieces.join('');
}

/** A desired user with the read it came from. */
interface Entry {
  d: DesiredUser;
  read: SourceReadResult;
  ks: string;
  /** Managed fields, normalised; `enabled` and a null `vmPin` removed (see managedFields). */
  fields: Partial<UserFields>;
  shape: FieldShape;
}

/** How an identity relates to the PBX after matching. */
type Resolution =
  | { kind: 'bound'; entry: Entry; binding: Binding; user: PbxUser }
  | { kind: 'adopt'; entry: Entry; user: PbxUser; how: AdoptionMatch | 'recovered'; binding?: Binding }
  | { kind: 'create'; entry: Entry; binding?: Binding };

/** Values pbxsync must keep unique across users, with the PBX field each lives in. */
type UniqueField = 'email' | 'dids' | 'phones';

interface Problem {
  field: string;
  holder: string;
  message: string;
}

/**
 * Computes the plan: what to change in the PBX so it matches the directory. Pure and deterministic: the same
 * inputs in any order give the same plan (ops sorted by kind, extension, identity); no I/O, no clock (the
 * time is `state.now`).
 *
 * Rules (DESIGN §1, §6): only fields a mapping manages are compared; extensions never change once bound;
 * unmanaged users are never modified or removed (only adopted when a mapping opts in); removals follow only
 * from complete, non-partial reads.
 */
export function plan(input: PlanInput): Plan {
  return new Planner(input).run();
}

/** Builds the canonical hash of the planner's inputs (desired users, actual users and departments, bindings). */
export function computeBasis(sources: SourceReadResult[], actual: ActualState, bindings: Binding[]): string {
  const desired = sources
    .flatMap((s) => s.desired)
    // Only what decides the outcome: where a record was read (file path, line) and the wording of the
    // reasons may differ between the run that saved a plan and the one that approves it.
    .map(({ origin: _origin, reasons: _reasons, ...decisive }) => canonicalJson(decisive))
    .sort();
  const users = actual.users.map((u) => canonicalJson(u)).sort();
  const departments = [...actual.departments].sort();
  const bound = bindings.map((b) => canonicalJson(b)).sort();
  return createHash('sha256').update(canonicalJson({ desired, users, departments, bindings: bound })).digest('hex');
}

/**
 * The fields a desired user manages, normalised. `enabled` is left out of the diff because it is planned as
 * enable/disable ops (the removal policy's, and a mapped `enabled` rule's: see planBound); a null `vmPin` means
 * "keep or let the PBX generate one", so it never clears an existing PIN.
 */
function managedFields(d: DesiredUser, shapes: Map<number, FieldShape>): { fields: Partial<UserFields>; shape: FieldShape } {
  const values = MANAGED_SCRATCH;
  let mask = 0;
  for (let i = 0; i < FIELD_ORDER.length; i++) {
    const f = FIELD_ORDER[i];
    if (f === 'enabled') continue;
    const v = d.fields[f];
    if (v === undefined || (f === 'vmPin' && v === null)) continue;
    values[i] = normaliseField(f, v);
    mask |= 1 << i;
  }
  let shape = shapes.get(mask);
  if (!shape) {
    const names = FIELD_ORDER.filter((_, i) => (mask & (1 << i)) !== 0);
    shape = {
      // WARNING: built with fromEntries, not `out[f] = v`: after a dozen keyed stores V8 makes the object a
      // hash table. Copies of this template (Object.assign) share its hidden class instead.
      template: Object.fromEntries(names.map((f) => [f, null])) as Partial<UserFields>,
      names,
      createFields: FIELD_ORDER.filter((f, i) => f === 'enabled' || (mask & (1 << i)) !== 0),
    };
    shapes.set(mask, shape);
  }
  const fields = Object.assign({}, shape.template) as Record<string, unknown>;
  for (let i = 0; i < FIELD_ORDER.length; i++) {
    if ((mask & (1 << i)) === 0) continue;
    fields[FIELD_ORDER[i]] = values[i];
    values[i] = undefined;
  }
  return { fields: fields as Partial<UserFields>, shape };
}

/** Normalised values of the desired user being read by managedFields (reused: it runs for every user). */
const MANAGED_SCRATCH: unknown[] = new Array<unknown>(FIELD_ORDER.length);

/** The managed fields one shape of desired user sets, with what the planner derives from them once. */
interface FieldShape {
  /** Those fields in FIELD_ORDER, null each: desired users of this shape are copies of it. */
  template: Partial<UserFields>;
  names: UserFieldName[];
  /** The `fields` list of a create of this shape: these and `enabled`, in FIELD_ORDER (one array for all). */
  createFields: UserFieldName[];
}

function uniqueValues(field: UniqueField, fields: Partial<UserFields>): string[] {
  if (field === 'email') return fields.email ? [fields.email] : noItems();
  if (field === 'dids') return fields.dids ?? noItems();
  return fields.phones?.length ? fields.phones.map((p) => p.mac) : noItems();
}

/**
 * Calls `fn` with each unique value `user` holds now, normalised: the values `uniqueValues` gives for
 * `normalisedUnique(user)`, read in place (this runs for every PBX user of every run that lists them).
 */
function eachHeldValue(user: PbxUser, fn: (field: UniqueField, value: string) => void): void {
  const email = normaliseField('email', user.email) as string | null;
  if (email) fn('email', email);
  for (const did of normaliseField('dids', user.dids) as string[]) fn('dids', did);
  for (const phone of normaliseField('phones', user.phones) as UserFields['phones']) fn('phones', phone.mac);
}

function valueLabel(field: UniqueField, value: string): string {
  if (field === 'email') return `e-mail ${value}`;
  if (field === 'dids') return `DID ${value}`;
  return `phone MAC ${value}`;
}

function compareExt(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}

function formatRanges(ranges: NumberRange[]): string {
  return ranges.map((r) => `${r.from}-${r.to}`).join(', ');
}

class Planner {
  private readonly now: Date;
  private readonly usersById = new Map<string, PbxUser>();
  private readonly usersByExt = new Map<string, PbxUser>();
  private readonly holders: Record<UniqueField, Map<string, PbxUser>> = {
    email: new Map(),
    dids: new Map(),
    phones: new Map(),
  };
  private readonly bindingByKey = new Map<string, Binding>();
  private readonly bindingByUserId = new Map<string, Binding>();
  private readonly bindingByExt = new Map<string, Binding>();
  private readonly departments = new Set<string>();
  private readonly pendingByKey = new Map<string, string>();

  /** Identities of this run that keep a PBX user (bound or adopted), by key string. */
  private readonly active = new Map<string, Entry>();
  /** PBX user id → key string of the identity adopting it in this run. */
  private readonly adoptedBy = new Map<string, string>();
  /** Users this plan deletes: their e-mail, DIDs and MACs are free for later phases. */
  private readonly deletedUserIds = new Set<string>();
  /** Per unique field, value → the identity of this run that claimed it first. */
  private readonly claims: Record<UniqueField, Map<string, Entry>> = { email: new Map(), dids: new Map(), phones: new Map() };
  /** Extensions claimed by creates of this run. */
  private readonly extClaims = new Map<string, Entry>();

  private readonly ops: Operation[] = [];
  /** Field shapes of the desired users, by the bit mask of their fields in FIELD_ORDER. */
  private readonly shapes = new Map<number, FieldShape>();
  private readonly issues: RecordIssue[] = [];
  private readonly notes: string[] = [];
  private readonly newDepartments = new Map<string, string>();
  private unchanged = 0;
  private readonly rangeTexts = new Map<NumberRange[], string>();

  constructor(private readonly input: PlanInput) {
    this.now = input.state.now;
    for (const u of input.actual.users) {
      this.usersById.set(u.id, u);
      this.usersByExt.set(u.extension, u);
      eachHeldValue(u, (field, value) => this.holders[field].set(value, u));
    }
    for (const b of input.state.bindings) {
      this.bindingByKey.set(keyString(b.key), b);
      this.bindingByUserId.set(b.userId, b);
      this.bindingByExt.set(b.extension, b);
    }
    for (const d of input.actual.departments) this.departments.add(d.toLowerCase());
    this.departments.add(DEFAULT_DEPARTMENT.toLowerCase());
    for (const p of input.state.pendingCreates ?? []) this.pendingByKey.set(keyString(p.key), p.extension);
  }

  run(): Plan {
    const reads = [...this.input.sources].sort((a, b) => (a.source < b.source ? -1 : a.source > b.source ? 1 : 0));
    const entries = this.collect(reads);
    const leaving = this.removals(reads, entries);

    const resolutions = this.resolve(entries.filter((e) => !leaving.has(e.ks)));
    // Bound identities claim their values first: an existing managed user keeps what it has over a newcomer.
    // Fixed extensions are taken before any allocation so "next free" never hands out a requested number.
    const order: Array<Resolution['kind']> = ['bound', 'adopt', 'create'];
    for (const kind of order) {
      const group = resolutions.filter((r) => r.kind === kind);
      if (kind === 'create') {
        const creates = group as Array<Extract<Resolution, { kind: 'create' }>>;
        const fixedFirst = [
          ...creates.filter((r) => r.binding || r.entry.d.extension.kind === 'fixed'),
          ...creates.filter((r) => !r.binding && r.entry.d.extension.kind === 'allocate'),
        ];
        const allocator = this.allocator(creates);
        for (const r of fixedFirst) this.planCreate(r, allocator);
      } else {
        for (const r of group) {
          if (r.kind === 'bound') this.planBound(r);
          else if (r.kind === 'adopt') this.planAdopt(r);
        }
      }
    }

    const operations = this.ops.sort(compareOps);
    const sourceIssues = reads.flatMap((r) => r.issues);
    const issues = [...sourceIssues, ...this.issues];
    return {
      runId: this.input.runId,
      createdAt: this.now.toISOString(),
      basis: this.input.basis === false ? '' : computeBasis(this.input.sources, this.input.actual, this.input.state.bindings),
      sources: reads.map(({ desired: _desired, ...rest }) => rest),
      departments: [...this.newDepartments.values()].sort(),
      operations,
      summary: summarise(operations, this.unchanged, issues.length),
      held: null,
      issues,
      notes: this.notes.sort(),
    };
  }

  /** All desired users, sorted so that input order never matters; a key listed twice keeps its first record. */
  private collect(reads: SourceReadResult[]): Entry[] {
    const all: Entry[] = [];
    for (const read of reads) {
      for (const d of read.desired) {
        const { fields, shape } = managedFields(d, this.shapes);
        all.push({ d, read, ks: keyString(d.key), fields, shape });
      }
    }
    all.sort(
      (a, b) =>
        cmp(a.d.key.source, b.d.key.source) ||
        (a.d.origin?.line ?? Number.MAX_SAFE_INTEGER) - (b.d.origin?.line ?? Number.MAX_SAFE_INTEGER) ||
        cmp(a.ks, b.ks) ||
        cmp(canonicalJson(a.d), canonicalJson(b.d)),
    );
    this.recognise(all);
    const seen = new Set<string>();
    const out: Entry[] = [];
    for (const e of all) {
      if (seen.has(e.ks)) {
        this.issues.push({
          source: e.d.key.source,
          file: e.d.origin?.file,
          line: e.d.origin?.line,
          record: e.d.key.anchor,
          message: `identity ${e.ks} appears more than once; only its first record is used`,
        });
        continue;
      }
      seen.add(e.ks);
      out.push(e);
    }
    return out;
  }

  /**
   * Re-keys each record whose anchor has no binding but which its source says may be known by another
   * (DesiredUser.matchBound: a CSV `keyColumn: auto` row is anchored by its Number, or by its e-mail when the
   * Number is empty) to the binding it stands for: with `extension`, the binding of its source at the
   * record's fixed extension; with `email`, the binding of its source whose PBX user has the record's e-mail.
   * So a user created from a row without a Number is the same user when its export (Number filled in) comes
   * back, and a row without a Number updates the user a numbered row created.
   *
   * A binding is taken only when no record of this run has its anchor (that record is the binding's) and no
   * earlier record (source, line order) took it; a crash-recovery create keeps its own key. Otherwise the
   * record stays what its anchor says, and the conflicts that follow name the holder.
   */
  private recognise(entries: Entry[]): void {
    // Built at the first candidate: in a run where every record has its binding (most runs) it is not needed.
    let present: Set<string> | undefined;
    const taken = new Set<string>();
    for (const e of entries) {
      const how = e.d.matchBound;
      if (!how || this.bindingByKey.has(e.ks) || this.pendingByKey.has(e.ks)) continue;
      let b: Binding | undefined;
      if (how === 'extension') {
        if (e.d.extension.kind === 'fixed') b = this.bindingByExt.get(e.d.extension.value);
      } else if (e.fields.email) {
        const u = this.holders.email.get(e.fields.email);
        b = u && this.bindingByUserId.get(u.id);
      }
      if (!b || b.key.source !== e.d.key.source) continue;
      const ks = keyString(b.key);
      present ??= new Set(entries.map((x) => x.ks));
      if (present.has(ks) || taken.has(ks)) continue;
      taken.add(ks);
      e.d = { ...e.d, key: b.key };
      e.ks = ks;
    }
  }

  /**
   * Bindings whose identities left (absent from a complete full read, tombstoned, out of scope, disabled in
   * the source) and the disable/delete ops the removal policy asks for. Returns the keys handled here, so
   * their desired records (disabled in the source) are not also diffed.
   *
   * WARNING: an incomplete or `partial` read says nothing about absent identities; it never removes anyone.
   */
  private removals(reads: SourceReadResult[], entries: Entry[]): Set<string> {
    const leaving = new Map<string, { binding: Binding; read: SourceReadResult; why: string }>();
    const byKey = new Map(entries.map((e) => [e.ks, e]));
    for (const read of reads) {
      if (!read.complete || read.mode === 'partial' || read.removal.action === 'keep') continue;
      const leave = (anchor: string, why: string): void => {
        const ks = keyString({ source: read.source, anchor });
        const binding = this.bindingByKey.get(ks);
        const present = byKey.get(ks);
        if (!binding || leaving.has(ks)) return;
        if (present && present.read === read && !present.d.disabledInSource) return;
        leaving.set(ks, { binding, read, why });
      };
      for (const e of entries) if (e.read === read && e.d.disabledInSource) leave(e.d.key.anchor, `disabled in ${read.source}`);
      for (const a of read.deleted) leave(a, `deleted or disabled in ${read.source}`);
      for (const a of read.outOfScope) leave(a, `out of scope in ${read.source}`);
      if (read.mode === 'full') {
        for (const b of this.bindingByKey.values()) {
          if (b.key.source === read.source) leave(b.key.anchor, `absent from a complete read of ${read.source}`);
        }
      }
    }
    for (const [ks, { binding, read, why }] of leaving) {
      const user = this.usersById.get(binding.userId);
      if (!user) continue;
      const base = {
        key: binding.key,
        userId: user.id,
        extension: user.extension,
        name: userName(user),
      };
      const policy = read.removal;
      const disable = (reason: string): void => {
        this.ops.push({ ...base, id: `disable:${ks}`, kind: 'disable', before: { enabled: user.enabled }, after: { enabled: false }, fields: ['enabled'], reason });
      };
      if (!binding.disabledAt) {
        disable(
          policy.action === 'delete'
            ? `${why}: disabled now, deleted after the ${policy.graceDays}-day grace period`
            : `${why}: disabled (removal policy disable)`,
        );
        continue;
      }
      const ageMs = this.now.getTime() - Date.parse(binding.disabledAt);
      const days = Math.floor(ageMs / DAY_MS);
      if (policy.action === 'delete' && ageMs > policy.graceDays * DAY_MS) {
        this.deletedUserIds.add(user.id);
        this.ops.push({
          ...base,
          id: `delete:${ks}`,
          kind: 'delete',
          before: { firstName: user.firstName, lastName: user.lastName, email: user.email, enabled: user.enabled },
          reason: `${why}; disabled ${days} days ago, grace period ${policy.graceDays} days`,
        });
      } else if (user.enabled) {
        // pbxsync disabled it before and someone enabled it by hand while the identity is still gone.
        disable(`${why}: disabled again (it was re-enabled in the PBX ${days} days after pbxsync disabled it)`);
      }
    }
    return new Set(leaving.keys());
  }

  /** Matches each identity to a bound user, an adoptable user, or nothing (create). */
  private resolve(entries: Entry[]): Resolution[] {
    const out: Resolution[] = [];
    for (const entry of entries) {
      const binding = this.bindingByKey.get(entry.ks);
      const user = binding ? this.usersById.get(binding.userId) : undefined;
      if (binding && user) {
        this.active.set(entry.ks, entry);
        out.push({ kind: 'bound', entry, binding, user });
        continue;
      }
      if (entry.d.disabledInSource) continue;
      const adopt = this.findAdoption(entry, binding);
      if (adopt) {
        this.adoptedBy.set(adopt.user.id, entry.ks);
        this.active.set(entry.ks, entry);
        out.push({ kind: 'adopt', entry, user: adopt.user, how: adopt.how, binding });
        continue;
      }
      out.push({ kind: 'create', entry, binding });
    }
    return out;
  }

  private isFree(u: PbxUser | undefined): u is PbxUser {
    return !!u && !this.bindingByUserId.has(u.id) && !this.adoptedBy.has(u.id);
  }

  private findAdoption(entry: Entry, binding: Binding | undefined): { user: PbxUser; how: AdoptionMatch | 'recovered' } | undefined {
    // A create journaled as started but never confirmed may have reached the PBX before a crash: the user
    // holding its extension is ours, whatever the adoption rules say. This is what makes kill -9 converge.
    const pendingExt = this.pendingByKey.get(entry.ks);
    if (pendingExt !== undefined) {
      const u = this.usersByExt.get(pendingExt);
      if (this.isFree(u)) return { user: u, how: 'recovered' };
    }
    for (const how of entry.d.adopt) {
      if (how === 'email' && entry.fields.email) {
        const u = this.holders.email.get(entry.fields.email);
        if (this.isFree(u)) return { user: u, how };
      }
      if (how === 'extension') {
        const ext = binding?.extension ?? (entry.d.extension.kind === 'fixed' ? entry.d.extension.value : undefined);
        const u = ext === undefined ? undefined : this.usersByExt.get(ext);
        if (this.isFree(u)) return { user: u, how };
      }
    }
    return undefined;
  }

  private ownerOf(u: PbxUser): string | undefined {
    const b = this.bindingByUserId.get(u.id);
    return b ? keyString(b.key) : this.adoptedBy.get(u.id);
  }

  private describeHolder(u: PbxUser, withExtension: boolean): string {
    const owner = this.ownerOf(u);
    const name = userName(u) ?? `user ${u.id}`;
    const ext = withExtension ? ` (${u.extension})` : '';
    return owner ? `user ${name}${ext} managed for ${owner}` : `unmanaged user ${name}${ext}`;
  }

  /**
   * True when the identity owning `u` gives up `value` in this run: its user is deleted, or its mapping
   * manages the field and wants another value. Unmanaged users never give anything up (invariant 3).
   */
  private releases(u: PbxUser, field: UniqueField, value: string): boolean {
    if (this.deletedUserIds.has(u.id)) return true;
    const owner = this.ownerOf(u);
    const entry = owner ? this.active.get(owner) : undefined;
    if (!entry || !(field in entry.fields)) return false;
    return !uniqueValues(field, entry.fields).includes(value);
  }

  /** Problems with the unique values (e-mail, DIDs, MACs) this identity wants for its user `selfId`. */
  private uniqueProblems(entry: Entry, fields: Partial<UserFields>, selfId: string | undefined): Problem[] {
    const problems: Problem[] = [];
    for (const field of ['email', 'dids', 'phones'] as const) {
      for (const value of uniqueValues(field, fields)) {
        const other = this.claims[field].get(value);
        if (other && other.ks !== entry.ks) {
          const holder = `${userName(other.fields) ?? other.ks} (${other.ks}, also in this run)`;
          problems.push({ field, holder, message: `${valueLabel(field, value)} is also wanted by ${holder}` });
          continue;
        }
        const h = this.holders[field].get(value);
        if (h && h.id !== selfId && !this.releases(h, field, value)) {
          const holder = this.describeHolder(h, true);
          problems.push({ field, holder, message: `${valueLabel(field, value)} is held by ${holder}` });
        }
      }
    }
    return problems;
  }

  private claim(entry: Entry, fields: Partial<UserFields>): void {
    for (const field of UNIQUE_FIELDS) {
      for (const value of uniqueValues(field, fields)) this.claimValue(field, value, entry);
    }
  }

  /** {@link claim} of the unique values `user` holds now. */
  private claimHeld(entry: Entry, user: PbxUser): void {
    eachHeldValue(user, (field, value) => this.claimValue(field, value, entry));
  }

  private claimValue(field: UniqueField, value: string, entry: Entry): void {
    const claimed = this.claims[field];
    if (!claimed.has(value)) claimed.set(value, entry);
  }

  /** Department problems of the given fields, or registers the departments to create. */
  private departmentProblems(entry: Entry, fields: Partial<UserFields>): Problem[] {
    const wanted = [fields.department, ...(fields.extraDepartments ?? [])].filter((x): x is string => !!x);
    const missing = wanted.filter((d) => !this.departments.has(d.toLowerCase()));
    if (missing.length === 0) return [];
    if (entry.d.createDepartments) {
      for (const m of missing) if (!this.newDepartments.has(m.toLowerCase())) this.newDepartments.set(m.toLowerCase(), m);
      return [];
    }
    return missing.map((m) => ({
      field: 'department',
      holder: 'mapping',
      message: `department ${m} does not exist and the mapping does not create departments`,
    }));
  }

  /** `in <source> (<file>, line <n>)`, after `lead`; one flat string (see {@link flat}). */
  private where(entry: Entry, lead = ''): string {
    const o = entry.d.origin;
    const source = entry.d.key.source;
    if (o?.file && o.line !== undefined) return flat(lead, 'in ', source, ' (', o.file, ', line ', String(o.line), ')');
    if (o?.file) return flat(lead, 'in ', source, ' (', o.file, ')');
    if (o?.line !== undefined) return flat(lead, 'in ', source, ' (line ', String(o.line), ')');
    return flat(lead, 'in ', source);
  }

  private stickyNote(entry: Entry, extension: string): string | undefined {
    const req = entry.d.extension;
    if (req.kind !== 'fixed' || req.value === extension) return undefined;
    const note = `${entry.ks}: the directory says extension ${req.value} but the identity keeps ${extension}; extensions never change once bound`;
    this.notes.push(note);
    return note;
  }

  private conflictOp(entry: Entry, extension: string, userId: string | undefined, problems: Problem[]): void {
    const byField = new Map<string, Problem[]>();
    for (const p of problems) byField.set(p.field, [...(byField.get(p.field) ?? []), p]);
    for (const [field, list] of byField) {
      this.ops.push({
        id: `conflict:${entry.ks}:${field}`,
        kind: 'conflict',
        key: entry.d.key,
        userId,
        extension,
        reason: `${list.map((p) => p.message).join('; ')} (${entry.ks} ${this.where(entry)})`,
        conflict: { field, holder: list.map((p) => p.holder).join('; ') },
        origin: entry.d.origin,
        name: userName(entry.fields),
      });
    }
  }

  /**
   * The field changes that bring `user` to the desired state, minus fields that cannot be applied (taken
   * values, missing departments): those become conflict ops and the rest still goes ahead.
   */
  private diffWithProblems(entry: Entry, user: PbxUser): { diff: Diff; problems: Problem[] } {
    const diff = diffFields(entry.fields, user);
    if (diff.fields.length === 0) {
      // Nothing changes (most users of most runs): no value is newly wanted, so none can be contested, and the
      // user keeps what it holds. Nothing is allocated for it: a nightly full run compares every user.
      this.claimHeld(entry, user);
      return NO_CHANGE;
    }
    const changed = pick(diff.after, diff.fields);
    const problems = [...this.uniqueProblems(entry, changed, user.id), ...this.departmentProblems(entry, changed)];
    const contested = new Set(problems.map((p) => p.field));
    if (contested.has('department')) contested.add('extraDepartments');
    const kept = diff.fields.filter((f) => !contested.has(f));
    // What the user holds once the op ran: the kept changes, and its current values for everything else.
    this.claim(entry, { ...normalisedUnique(user), ...pick(diff.after, kept) });
    return {
      diff: { fields: kept, before: pick(diff.before, kept), after: pick(diff.after, kept) },
      problems,
    };
  }

  private planBound(r: Extract<Resolution, { kind: 'bound' }>): void {
    const { entry, binding, user } = r;
    const ks = entry.ks;
    const { diff, problems } = this.diffWithProblems(entry, user);
    const note = this.stickyNote(entry, user.extension);
    if (problems.length) this.conflictOp(entry, user.extension, user.id, problems);
    // Set when this run re-enables the user pbxsync disabled then.
    const disabledAt = entry.d.disabledInSource ? undefined : binding.disabledAt;
    // The mapping's `enabled` rule (a 3CX `Disabled` column): absent leaves enablement to the removal policy.
    const wanted = entry.d.fields.enabled;
    const toggle = wanted === false ? (user.enabled ? 'disable' : undefined) : disabledAt || (wanted === true && !user.enabled) ? 'enable' : undefined;
    if (!toggle && !diff.fields.length) {
      if (!problems.length) this.unchanged++;
      return;
    }
    const base = { key: entry.d.key, userId: user.id, extension: user.extension, origin: entry.d.origin, name: userName({ ...user, ...diff.after }) };
    const changedText = diff.fields.length ? `${joinHuman(diff.fields.map((f) => FIELD_LABELS[f]))} changed ` : '';
    if (toggle) {
      const why =
        toggle === 'disable'
          ? `marked disabled ${this.where(entry)}`
          : disabledAt
            ? `back ${this.where(entry)}: re-enabled (pbxsync disabled it on ${disabledAt.slice(0, 10)})`
            : `marked enabled ${this.where(entry)}`;
      this.ops.push({
        ...base,
        id: `${toggle}:${ks}`,
        kind: toggle,
        before: { ...diff.before, enabled: user.enabled },
        after: { ...diff.after, enabled: toggle === 'enable' },
        fields: [...diff.fields, 'enabled'],
        reason: `${why}${changedText ? `; ${changedText.trim()}` : ''}`,
        ...(toggle === 'disable' || !disabledAt ? { mapped: true as const } : {}),
      });
    } else {
      this.ops.push({
        ...base,
        id: `update:${ks}`,
        kind: 'update',
        before: diff.before,
        after: diff.after,
        fields: diff.fields,
        reason: `${changedText}${this.where(entry)}${note ? `; ${note}` : ''}`,
      });
    }
  }

  private planAdopt(r: Extract<Resolution, { kind: 'adopt' }>): void {
    const { entry, user, how } = r;
    const found = this.diffWithProblems(entry, user);
    const { problems } = found;
    let { diff } = found;
    this.stickyNote(entry, user.extension);
    if (problems.length) this.conflictOp(entry, user.extension, user.id, problems);
    // A mapped `enabled` is taken over with the user, so the next run has nothing left to do.
    const wanted = entry.d.fields.enabled;
    if (wanted !== undefined && wanted !== user.enabled) {
      diff = {
        fields: [...diff.fields, 'enabled'],
        before: { ...diff.before, enabled: user.enabled },
        after: { ...diff.after, enabled: wanted },
      };
    }
    const changed = diff.fields.length ? `; ${joinHuman(diff.fields.map((f) => FIELD_LABELS[f]))} changed` : '';
    const reason =
      how === 'recovered'
        ? 'recovered from an interrupted run'
        : `adopted unmanaged user ${userName(user) ?? user.id} (${user.extension}) by ${how === 'email' ? 'e-mail' : 'extension'} match ${this.where(entry)}${changed}`;
    this.ops.push({
      id: `adopt:${entry.ks}`,
      kind: 'adopt',
      key: entry.d.key,
      userId: user.id,
      extension: user.extension,
      before: diff.before,
      after: diff.after,
      fields: diff.fields,
      reason,
      origin: entry.d.origin,
      name: userName({ ...user, ...diff.after }),
    });
  }

  /** The allocator sees every number in use: the PBX's, every binding's (sticky even when the user vanished). */
  private allocator(creates: Array<Extract<Resolution, { kind: 'create' }>>): ExtensionAllocator {
    const inUse = new Set<string>([...this.usersByExt.keys(), ...this.bindingByExt.keys()]);
    for (const r of creates) if (!r.binding && r.entry.d.extension.kind === 'fixed') inUse.add(r.entry.d.extension.value);
    return new ExtensionAllocator({ numbering: this.input.numbering, inUse });
  }

  private planCreate(r: Extract<Resolution, { kind: 'create' }>, allocator: ExtensionAllocator): void {
    const { entry, binding } = r;
    if (entry.d.createOnly) {
      // A new user gets the mapping's values for the fields its record does not supply (its defaults); an
      // existing user is only ever compared on the fields the record has.
      const merged = managedFields({ ...entry.d, fields: { ...entry.d.createOnly, ...entry.d.fields } }, this.shapes);
      entry.fields = merged.fields;
      entry.shape = merged.shape;
    }
    const req = entry.d.extension;
    const problems: Problem[] = [];
    let extension: string | undefined = binding?.extension ?? (req.kind === 'fixed' ? req.value : undefined);

    if (extension !== undefined) {
      if (!binding) {
        const bad = extensionProblem(extension, this.input.numbering);
        if (bad) {
          this.issues.push({
            source: entry.d.key.source,
            file: entry.d.origin?.file,
            line: entry.d.origin?.line,
            field: 'extension',
            record: entry.d.key.anchor,
            message: `${bad}; ${entry.ks} is not created`,
          });
          return;
        }
      }
      problems.push(...this.extensionProblems(entry, extension));
    }
    problems.push(...this.uniqueProblems(entry, entry.fields, undefined), ...this.departmentProblems(entry, entry.fields));
    let allocated = false;
    if (problems.length === 0 && extension === undefined && req.kind === 'allocate') {
      allocated = true;
      extension = allocator.next(req.ranges);
      if (extension === undefined) {
        problems.push({ field: 'extension', holder: 'numbering', message: `no free extension in ${formatRanges(req.ranges)}` });
      }
    }
    if (problems.length) {
      this.conflictOp(entry, extension ?? '', undefined, problems);
      return;
    }
    const ext = extension as string;
    this.extClaims.set(ext, entry);
    allocator.take(ext);
    this.claim(entry, entry.fields);
    if (binding) this.stickyNote(entry, ext);
    // The entry's own fields object becomes the create's `after` (nothing reads the entry as desired state
    // once its create is planned): no copy of every created user's fields. WARNING: never a spread plus a
    // new property, which V8 often gives a hidden class of its own (~0.5 KB each).
    const after: Partial<UserFields> = entry.fields;
    after.enabled = (entry.d.fields.enabled ?? entry.d.createOnly?.enabled) !== false;
    this.ops.push({
      id: flat('create:', entry.ks),
      kind: 'create',
      key: entry.d.key,
      extension: ext,
      after,
      fields: entry.shape.createFields,
      reason: binding
        ? `the bound PBX user was deleted by hand; re-created with its bound extension ${ext} (${entry.ks} ${this.where(entry)})`
        : allocated
          ? flat(this.where(entry, 'new '), '; extension allocated from ', this.rangesText(req))
          : this.where(entry, 'new '),
      sendWelcome: entry.d.sendWelcome,
      origin: entry.d.origin,
      name: userName(entry.fields),
    });
  }

  /** The ranges of an allocation as text, once per ranges list (a mapping's requests share theirs). */
  private rangesText(req: ExtensionRequest): string {
    if (req.kind !== 'allocate') return '';
    let text = this.rangeTexts.get(req.ranges);
    if (text === undefined) {
      text = formatRanges(req.ranges);
      this.rangeTexts.set(req.ranges, text);
    }
    return text;
  }

  private extensionProblems(entry: Entry, ext: string): Problem[] {
    const holderUser = this.usersByExt.get(ext);
    if (holderUser) {
      const holder = this.describeHolder(holderUser, false);
      return [{ field: 'extension', holder, message: `extension ${ext} is held by ${holder}` }];
    }
    const reserved = this.bindingByExt.get(ext);
    if (reserved && keyString(reserved.key) !== entry.ks) {
      const holder = `${keyString(reserved.key)} (bound; its PBX user was deleted by hand)`;
      return [{ field: 'extension', holder, message: `extension ${ext} is reserved for ${holder}` }];
    }
    const other = this.extClaims.get(ext);
    if (other && other.ks !== entry.ks) {
      const holder = `${userName(other.fields) ?? other.ks} (${other.ks}, also in this run)`;
      return [{ field: 'extension', holder, message: `extension ${ext} is also wanted by ${holder}` }];
    }
    return [];
  }
}

interface Diff {
  fields: UserFieldName[];
  before: Partial<UserFields>;
  after: Partial<UserFields>;
}

/**
 * Compares only the fields the mapping manages. `options` is compared per key the mapping sets; its `after`
 * carries the PBX's other keys unchanged so a target that replaces the whole record loses nothing.
 */
export function diffFields(desired: Partial<UserFields>, actual: PbxUser): Diff {
  const before: Record<string, unknown> = {};
  const after: Record<string, unknown> = {};
  const fields: UserFieldName[] = [];
  for (const f of FIELD_ORDER) {
    if (!(f in desired) || f === 'enabled') continue;
    const want = desired[f];
    if (want === undefined || (f === 'vmPin' && want === null)) continue;
    if (f === 'options') {
      const have = (normaliseField('options', actual.options ?? {}) ?? {}) as Record<string, string>;
      const wantOpts = want as Record<string, string>;
      if (holdsOptions(have, wantOpts)) continue;
      before.options = have;
      after.options = normaliseField('options', { ...have, ...wantOpts });
      fields.push(f);
      continue;
    }
    if (sameField(f, want, actual[f])) continue;
    before[f] = normaliseField(f, actual[f]) ?? null;
    after[f] = normaliseField(f, want);
    fields.push(f);
  }
  return { fields, before: before as Partial<UserFields>, after: after as Partial<UserFields> };
}

/** True when `have` holds every option of `want` with the same value (no key array per user and field). */
function holdsOptions(have: Record<string, string>, want: Record<string, string>): boolean {
  for (const k in want) if (have[k] !== want[k]) return false;
  return true;
}

/** The unique fields, in the order values are claimed. */
const UNIQUE_FIELDS: readonly UniqueField[] = ['email', 'dids', 'phones'];

/** What {@link Planner.diffWithProblems} returns for a user without changes (shared: never modified). */
const NO_CHANGE: { diff: Diff; problems: Problem[] } = Object.freeze({
  diff: Object.freeze({ fields: noItems<UserFieldName>(), before: Object.freeze({}), after: Object.freeze({}) }),
  problems: noItems<Problem>(),
});

function normalisedUnique(u: PbxUser): Partial<UserFields> {
  return {
    email: normaliseField('email', u.email) as string | null,
    dids: normaliseField('dids', u.dids) as string[],
    phones: normaliseField('phones', u.phones) as UserFields['phones'],
  };
}

function pick<T extends object>(obj: T, keys: readonly string[]): Partial<T> {
  const out: Record<string, unknown> = {};
  for (const k of keys) if (k in obj) out[k] = (obj as Record<string, unknown>)[k];
  return out as Partial<T>;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareOps(a: Operation, b: Operation): number {
  return (
    KIND_ORDER.indexOf(a.kind) - KIND_ORDER.indexOf(b.kind) ||
    compareExt(a.extension, b.extension) ||
    cmp(a.key ? keyString(a.key) : '', b.key ? keyString(b.key) : '') ||
    cmp(a.id, b.id)
  );
}

/** Counts ops by kind; `unchanged` and `errors` come from the caller. */
export function summarise(ops: readonly Operation[], unchanged: number, errors: number): PlanSummary {
  const s: PlanSummary = { create: 0, update: 0, disable: 0, enable: 0, delete: 0, adopt: 0, unchanged, conflicts: 0, errors };
  for (const op of ops) {
    if (op.kind === 'conflict') s.conflicts++;
    else s[op.kind]++;
  }
  return s;
}
