import type { CompileContext, Step } from './context.js';
import { ouMatcher } from './conditions.js';
import { compileSource, readText, type Getter } from './source.js';
import type { DepartmentSpec } from './spec.js';
import type { Decision } from './types.js';

/** Distinct department names shared per mapping; past this (not a department name column) values stay as read. */
const MAX_SHARED_NAMES = 1000;

/** The compiled `department` section: the Step and whether missing departments may be created. */
export interface DepartmentRule {
  step: Step;
  create: boolean;
}

const KINDS = ['from', 'fromGroups', 'fromOu', 'expr', 'value'] as const;

/**
 * Compiles `department`: the main department from an attribute, the groups, the OU, an expression or a
 * constant, looked up in `table` (case-insensitive) with `default` when nothing maps; `extra: mappedGroups`
 * adds every group with a table entry as a further department.
 */
export function compileDepartment(spec: DepartmentSpec | undefined, ctx: CompileContext): DepartmentRule | undefined {
  if (!spec) return undefined;
  const kinds = KINDS.filter((k) => spec[k] !== undefined);
  if (kinds.length !== 1) {
    ctx.problem(['department'], kinds.length === 0 ? `needs one of ${KINDS.join(', ')}` : `use only one of ${kinds.join(', ')}`);
    return undefined;
  }
  const fallback = spec.default ?? 'DEFAULT';
  const table = spec.table === undefined ? undefined : new Map(Object.entries(spec.table).map(([k, v]) => [k.toLowerCase(), v]));
  const rule = ctx.rule(['department']);
  const tableRule = ctx.rule(['department', 'table']);
  const defaultDecision: Decision = { field: 'department', value: fallback, rule: ctx.rule(['department', 'default']), reason: 'nothing mapped: default department' };
  if ((spec.fromGroups || spec.fromOu) && !table) ctx.problem(['department'], `${kinds[0]} needs a table`);

  type Pick = { name: string; decision: Decision } | undefined;
  let pick: (s: Parameters<Step>[0], out: Parameters<Step>[1]) => Pick | null;

  if (spec.fromGroups) {
    // Table order decides between several matching groups, so the admin controls precedence.
    const entries = Object.entries(spec.table ?? {}).map(([group, name]) => ({
      group: group.toLowerCase(),
      decision: { field: 'department', value: name, rule: tableRule, reason: `member of group "${group}"` } as Decision,
      name,
    }));
    pick = (s) => {
      const groups = new Set(s.identity.groups.map((g) => g.toLowerCase()));
      const hit = entries.find((e) => groups.has(e.group));
      return hit && { name: hit.name, decision: hit.decision };
    };
  } else if (spec.fromOu) {
    const entries = Object.entries(spec.table ?? {}).map(([ou, name]) => ({
      match: ouMatcher(ou),
      decision: { field: 'department', value: name, rule: tableRule, reason: `inside "${ou}"` } as Decision,
      name,
    }));
    pick = (s) => {
      let best: (typeof entries)[number] | undefined;
      let bestLength = -1;
      for (const e of entries) {
        const length = e.match(s.identity.origin);
        if (length !== undefined && length > bestLength) [best, bestLength] = [e, length];
      }
      return best && { name: best.name, decision: best.decision };
    };
  } else {
    const source = { from: spec.from, expr: spec.expr, value: spec.value };
    const getter: Getter | undefined = compileSource(source, ['department'], ctx, 'department');
    if (!getter) return undefined;
    // A handful of department names across thousands of users: each user shares the one string of its
    // name instead of holding the copy its CSV cell or directory attribute arrived as (~2.6 MB per 100,000).
    const seen = new Map<string, string>();
    const shared = (value: string): string => {
      const had = seen.get(value);
      if (had !== undefined) return had;
      if (seen.size < MAX_SHARED_NAMES) seen.set(value, value);
      return value;
    };
    pick = (s, out) => {
      const read = readText(getter, s, out);
      if (read === undefined) return null;
      if (read === '') return undefined;
      const value = shared(read);
      if (!table) return { name: value, decision: { field: 'department', value, rule, reason: getter.describe } };
      const name = table.get(value.toLowerCase());
      if (name === undefined) return undefined;
      return { name, decision: { field: 'department', value: name, rule: tableRule, reason: `${getter.describe}: "${value}"` } };
    };
  }

  const extra = spec.extra === 'mappedGroups' ? table : undefined;
  if (spec.extra === 'mappedGroups' && !table) ctx.problem(['department', 'extra'], 'mappedGroups needs a table');
  const extraRule = ctx.rule(['department', 'extra']);

  const step: Step = (s, out) => {
    const picked = pick(s, out);
    if (picked === null) return;
    const name = picked?.name ?? fallback;
    out.fields.department = name;
    out.department = name;
    out.reasons.push(picked?.decision ?? defaultDecision);
    if (extra) {
      const names = new Set<string>();
      for (const g of s.identity.groups) {
        const d = extra.get(g.toLowerCase());
        if (d !== undefined && d !== name) names.add(d);
      }
      const list = [...names].sort();
      out.fields.extraDepartments = list;
      out.reasons.push({ field: 'extraDepartments', value: list, rule: extraRule, reason: 'groups with a department in the table' });
    }
  };
  return { step, create: spec.create ?? false };
}
