import { UsageError } from '../errors/index.js';
import { SECRET_FIELDS, type UserFieldName, type UserFields } from '../model/index.js';
import { userName } from './fields.js';
import type { Operation, Plan, PlanSummary } from './types.js';
import type { ApplyReport } from './apply.js';

/** What stands in for a secret value in plans, summaries and printed output. */
export const MASK = '[secret]';

/** Format marker of saved plan files. */
export const PLAN_FORMAT = 'pbxsync-plan/1';

/**
 * A plan as read back from a file. Secret values were masked when it was saved, so it can be shown and its
 * basis compared, but its secret fields must not be written to the PBX (apply skips masked values).
 */
export interface PlanFile extends Plan {
  format: typeof PLAN_FORMAT;
  secretsMasked: true;
}

function maskFields(fields: Partial<UserFields> | undefined): Partial<UserFields> | undefined {
  if (!fields) return fields;
  const out: Record<string, unknown> = { ...fields };
  for (const k of Object.keys(out)) {
    if (SECRET_FIELDS.has(k as UserFieldName) && out[k] !== null && out[k] !== undefined) out[k] = MASK;
  }
  return out as Partial<UserFields>;
}

/** An operation with every secret field in before/after replaced by {@link MASK}. */
export function maskOperation(op: Operation): Operation {
  const out: Operation = { ...op };
  if (op.before) out.before = maskFields(op.before);
  if (op.after) out.after = maskFields(op.after);
  return out;
}

/** The plan as JSON for `plan --out FILE` and held plans; secrets masked (DESIGN §6 invariant 6). */
export function serializePlan(plan: Plan): string {
  const file: PlanFile = { format: PLAN_FORMAT, secretsMasked: true, ...plan, operations: plan.operations.map(maskOperation) };
  return JSON.stringify(file, null, 2) + '\n';
}

/** Reads a plan saved by {@link serializePlan}. Throws UsageError when the text is not such a plan. */
export function parsePlan(text: string): PlanFile {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`not a pbxsync plan file: ${(err as Error).message}`);
  }
  const p = data as Partial<PlanFile> | null;
  if (!p || typeof p !== 'object' || p.format !== PLAN_FORMAT) {
    throw new UsageError(`not a pbxsync plan file (expected "format": "${PLAN_FORMAT}")`);
  }
  const missing = (['runId', 'createdAt', 'basis', 'operations', 'summary', 'sources', 'departments'] as const).filter(
    (k) => p[k] === undefined,
  );
  if (missing.length || !Array.isArray(p.operations)) {
    throw new UsageError(`plan file is incomplete: missing ${missing.join(', ') || 'operations'}`);
  }
  return { ...(p as PlanFile), secretsMasked: true, held: p.held ?? null, issues: p.issues ?? [] };
}

/** The machine-readable summary of `sync`/`plan`/`import --json` (DESIGN §3). */
export interface SummaryJson {
  runId: string;
  summary: PlanSummary;
  held: string | null;
  operations: Operation[];
  /** Per source: the mapping rule of each field its mapping sets, which a change of that field in `operations` follows. */
  rules: Record<string, Partial<Record<UserFieldName, string>>>;
  /** Present after apply: operations that failed, each with its error. */
  failed?: Array<{ id: string; error: string }>;
  interrupted?: boolean;
  issues: Plan['issues'];
  /** What the plan's reader should know that is not an operation or an issue (see Plan.notes). */
  notes: string[];
}

/**
 * Builds the DESIGN §3 JSON summary. Without `applied` it describes the plan; with it, the counts are those
 * of what was applied (errors = record issues + failed operations) and the failures are listed.
 */
export function summaryJson(plan: Plan, applied?: ApplyReport): SummaryJson {
  const base: SummaryJson = {
    runId: plan.runId,
    summary: applied ? applied.summary : plan.summary,
    held: plan.held,
    operations: plan.operations.map(maskOperation),
    rules: Object.fromEntries(plan.sources.flatMap((s) => (s.rules ? [[s.source, s.rules]] : []))),
    issues: plan.issues,
    notes: plan.notes ?? [],
  };
  if (applied) {
    base.failed = applied.failed.map((f) => ({ id: f.op.id, error: f.error }));
    base.interrupted = applied.interrupted;
  }
  return base;
}

const SYMBOLS: Record<Operation['kind'], string> = {
  create: '+',
  update: '~',
  enable: '~',
  adopt: '&',
  disable: '-',
  delete: '-',
  conflict: '!',
};

function show(field: UserFieldName, value: unknown): string {
  if (SECRET_FIELDS.has(field) && value !== null && value !== undefined) return MASK;
  if (value === null || value === undefined) return '(none)';
  if (Array.isArray(value)) {
    return value.length ? value.map((v) => (typeof v === 'object' ? (v as { mac?: string }).mac ?? JSON.stringify(v) : String(v))).join(', ') : '(none)';
  }
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/**
 * `items` in the order of the input they are about, for an admin who fixes the input from the top: grouped by
 * source and file (groups in the order they first appear), and by line within a group, entries without a line
 * (the file as a whole) first. Stable, so items of one line keep their order. Returns a new array. Without it,
 * a file's problems come in batches (the reader's, then the planner's; failures as apply meets them), each in
 * its own order.
 */
export function inInputOrder<T>(items: readonly T[], where: (item: T) => { source?: string; file?: string; line?: number }): T[] {
  const groups = new Map<string, number>();
  const keyed = items.map((item) => {
    const w = where(item);
    const group = `${w.source ?? ''}\0${w.file ?? ''}`;
    if (!groups.has(group)) groups.set(group, groups.size);
    return { item, group: groups.get(group)!, line: w.line ?? 0 };
  });
  return keyed.sort((a, b) => a.group - b.group || a.line - b.line).map((k) => k.item);
}

/**
 * The plan for humans, Terraform-like:
 * ```
 * + create 1001 Anna Smith (new in hr-csv (line 14))
 * ~ update 200 Noelle Melton (first name and e-mail changed in hr-csv (line 3))
 *     firstName: Amanda → Noelle
 * ! conflict 300 ... (extension 300 is held by unmanaged user ...)
 * ? error hr-csv /srv/inbox/staff.csv:7 Number: extension 911 is an emergency number and can never be an extension
 * ```
 * Operations keep the plan's order; the rejected rows (`? error`) are in input order ({@link inInputOrder}).
 * Secrets are masked.
 */
export function formatPlan(plan: Plan): string {
  const lines: string[] = [];
  const s = plan.summary;
  lines.push(
    `Plan ${plan.runId}: ${s.create} to create, ${s.update} to update, ${s.adopt} to adopt, ${s.enable} to enable, ` +
      `${s.disable} to disable, ${s.delete} to delete; ${s.unchanged} unchanged, ${s.conflicts} conflicts, ${s.errors} errors`,
  );
  if (plan.held) lines.push(`HELD: ${plan.held}`);
  if (plan.departments.length) lines.push(`+ departments ${plan.departments.join(', ')}`);
  for (const op of plan.operations) {
    const name = op.name ?? userName(op.after) ?? userName(op.before) ?? (op.key ? `${op.key.source}/${op.key.anchor}` : '');
    lines.push(`${SYMBOLS[op.kind]} ${op.kind} ${op.extension || '-'} ${name} (${op.reason})`.replace(/ {2,}/g, ' '));
    if (op.kind === 'update' || op.kind === 'adopt' || op.kind === 'enable') {
      const rules = op.key && plan.sources.find((s) => s.source === op.key!.source)?.rules;
      for (const f of op.fields ?? []) {
        const rule = rules?.[f];
        lines.push(`    ${f}: ${show(f, op.before?.[f])} → ${show(f, op.after?.[f])}${rule ? `   [${rule}]` : ''}`);
      }
    }
  }
  for (const issue of inInputOrder(plan.issues, (i) => i)) {
    // file:line as compilers write it: an editor or terminal opens the row from there.
    const where = issue.file ? [issue.file, issue.line].filter((x) => x !== undefined).join(':') : issue.line !== undefined ? `line ${issue.line}` : '';
    lines.push(`? error ${issue.source}${where ? ` ${where}` : ''}${issue.field ? ` ${issue.field}` : ''}: ${issue.message}`);
  }
  for (const note of plan.notes ?? []) lines.push(`# ${note}`);
  return lines.join('\n') + '\n';
}

