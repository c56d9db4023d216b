import { capRole, parseRole, roleRank, type RoleName } from '../model/index.js';
import type { CompileContext, Step } from './context.js';
import { recordIssue } from './context.js';
import { compileCondition, CONDITION_KEYS, type Condition } from './conditions.js';
import type { Getter } from './source.js';
import { compileSource, readText } from './source.js';
import type { ConditionSpec, RoleSpec } from './spec.js';

interface RoleRule {
  condition: Condition;
  rule: string;
  /** Either a fixed role... */
  role?: RoleName;
  /** ...or the attribute holding the role text. */
  from?: Getter;
}

/**
 * Compiles `role`: the first rule whose condition holds decides (a `from` rule only when its cell is not
 * empty), else `default`; the result is capped at `maxRole` (the PBX rule: nobody grants a role above
 * their own). An unreadable role text makes the record invalid rather than silently becoming `users`.
 */
export function compileRole(spec: RoleSpec | undefined, ctx: CompileContext): Step | undefined {
  if (!spec) return undefined;
  const maxRole = spec.maxRole;
  const fallback = spec.default ?? 'users';
  if (roleRank(fallback) > roleRank(maxRole)) {
    ctx.problem(['role', 'default'], `default role ${fallback} is above maxRole ${maxRole}`);
  }
  const rules: RoleRule[] = [];
  (spec.rules ?? []).forEach((r, i) => {
    const path = ['role', 'rules', i];
    if ((r.role === undefined) === (r.from === undefined)) {
      ctx.problem(path, 'a role rule needs exactly one of role or from');
      return;
    }
    if (r.role !== undefined && roleRank(r.role) > roleRank(maxRole)) {
      ctx.problem([...path, 'role'], `role ${r.role} is above maxRole ${maxRole}`);
    }
    const conditionSpec: ConditionSpec = {};
    for (const k of CONDITION_KEYS) if (r[k] !== undefined) (conditionSpec as Record<string, unknown>)[k] = r[k];
    const condition = compileCondition(conditionSpec, path, ctx);
    const from = r.from === undefined ? undefined : compileSource(r.from, [...path, 'from'], ctx, 'role');
    if (condition) rules.push({ condition, rule: ctx.rule(path), role: r.role, from });
  });
  const defaultRule = ctx.rule(['role', 'default']);
  const maxRule = ctx.rule(['role', 'maxRole']);

  return (subject, out) => {
    let role: RoleName = fallback;
    let rule = defaultRule;
    let reason = 'no rule matched: default role';
    for (const r of rules) {
      if (!r.condition.test(subject, out)) continue;
      if (r.role !== undefined) {
        role = r.role;
        rule = r.rule;
        reason = r.condition.describe;
        break;
      }
      if (r.from === undefined) continue;
      const cell = readText(r.from, subject, out);
      if (cell === undefined) return;
      if (cell === '') continue;
      const parsed = parseRole(cell);
      if (parsed === undefined) {
        out.issues.push(recordIssue(subject.identity, r.from.field, `"${cell}" is not a role (use e.g. users, managers, system_owners)`));
        return;
      }
      role = parsed;
      rule = r.rule;
      reason = `${r.from.describe}: "${cell}"`;
      break;
    }
    const capped = capRole(role, maxRole);
    if (capped !== role) {
      out.reasons.push({ field: 'role', value: capped, rule: maxRule, reason: `${role} (${reason}) is above maxRole, capped to ${maxRole}` });
    } else {
      out.reasons.push({ field: 'role', value: role, rule, reason });
    }
    out.fields.role = capped;
  };
}
