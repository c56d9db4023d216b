import type { DesiredUser, ExtensionRequest, NumberRange } from '../../src/mapping/types.js';
import { newUserFields } from '../../src/model/index.js';
import type { PbxUser } from '../../src/model/index.js';
import { plan } from '../../src/reconcile/plan.js';
import type { Binding, NumberingPolicy, Operation, PendingCreate, Plan, SafetyPolicy, SourceReadResult } from '../../src/reconcile/types.js';

/** The planner's clock in tests. */
export const NOW = new Date('2025-03-01T12:00:00.000Z');

/** An ISO date `days` before NOW. */
export function daysAgo(days: number): string {
  return new Date(NOW.getTime() - days * 86_400_000).toISOString();
}

/** A fixed extension request. */
export function fixed(value: string): ExtensionRequest {
  return { kind: 'fixed', value, rule: 'test#extension' };
}

/** An allocated extension request. */
export function allocate(...ranges: NumberRange[]): ExtensionRequest {
  return { kind: 'allocate', ranges: ranges.length ? ranges : [{ from: '1000', to: '1999' }], rule: 'test#extension' };
}

/** A desired user: Anna Smith in `inbox`, allocated extension, no adoption. */
export function desired(o: Partial<DesiredUser> & { anchor?: string; source?: string; line?: number } = {}): DesiredUser {
  const { anchor, source, line, ...rest } = o;
  return {
    key: { source: source ?? 'inbox', anchor: anchor ?? 'a1' },
    fields: { firstName: 'Anna', lastName: 'Smith', email: 'anna@example.com' },
    extension: allocate(),
    createDepartments: false,
    sendWelcome: false,
    adopt: [],
    disabledInSource: false,
    reasons: [],
    origin: line === undefined ? undefined : { line },
    ...rest,
  };
}

/** A PBX user: Amanda Camden at 200. */
export function pbxUser(o: Partial<PbxUser> = {}): PbxUser {
  const extension = o.extension ?? '200';
  return {
    id: `u${extension}`,
    extension,
    ...newUserFields(),
    firstName: 'Amanda',
    lastName: 'Camden',
    email: 'amanda@example.com',
    vmPin: '8264',
    ...o,
  };
}

/** A binding of `inbox/<anchor>` to a user. */
export function binding(anchor: string, userId: string, extension: string, o: Partial<Binding> = {}): Binding {
  return { key: { source: o.key?.source ?? 'inbox', anchor }, userId, extension, boundAt: '2024-01-01T00:00:00.000Z', ...o };
}

/** A complete full read of `inbox` with removal policy disable. */
export function read(o: Partial<SourceReadResult> = {}): SourceReadResult {
  const d = o.desired ?? [];
  return {
    source: 'inbox',
    mode: 'full',
    complete: true,
    count: d.length + (o.outOfScope?.length ?? 0),
    desired: d,
    deleted: [],
    outOfScope: [],
    issues: [],
    removal: { action: 'disable', graceDays: 30 },
    ...o,
  };
}

export const NUMBERING: NumberingPolicy = { ranges: [{ from: '1000', to: '1999' }], reserved: [], emergency: [] };

export const SAFETY: SafetyPolicy = { maxDeletes: 10, maxDeletePercent: 10, maxDisables: 10, maxDisablePercent: 10, minSourceRatio: 0.5 };

/** Everything a plan call needs, with defaults. */
export interface Scenario {
  sources?: SourceReadResult[];
  users?: PbxUser[];
  departments?: string[];
  bindings?: Binding[];
  pendingCreates?: PendingCreate[];
  numbering?: NumberingPolicy;
}

/** Runs the planner on a scenario. */
export function planOf(s: Scenario): Plan {
  return plan({
    runId: 'r1',
    sources: s.sources ?? [],
    actual: { users: s.users ?? [], departments: s.departments ?? ['DEFAULT', 'Sales'] },
    state: { bindings: s.bindings ?? [], lastGoodCount: {}, now: NOW, pendingCreates: s.pendingCreates },
    numbering: s.numbering ?? NUMBERING,
    safety: SAFETY,
  });
}

/** "kind extension anchor field,field" — the compact form plan tables compare. */
export function sig(op: Operation): string {
  return [op.kind, op.extension, op.key?.anchor ?? '-', (op.fields ?? []).join(',')].join(' ').trim();
}
