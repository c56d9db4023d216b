import type { CompileContext, Output } from './context.js';
import { compileCondition, type Condition } from './conditions.js';
import type { ScopeSpec } from './spec.js';
import type { Decision } from './types.js';
import type { Subject } from './values.js';

/** A compiled scope: true when the subject is in scope; pushes the deciding Decision either way. */
export type ScopeTest = (subject: Subject, out: Output) => boolean;

/**
 * Compiles `scope`: in scope when the identity matches at least one include rule (or none are given) and no
 * exclude rule. Exclusion wins, so "everyone in Staff except Contractors" reads naturally.
 */
export function compileScope(spec: ScopeSpec | undefined, ctx: CompileContext): ScopeTest {
  const include = compileList(spec?.include, 'include', ctx);
  const exclude = compileList(spec?.exclude, 'exclude', ctx);
  // Decisions that do not depend on the record are built once and shared (they are read-only data).
  const everyone: Decision = { field: 'scope', value: true, rule: ctx.rule(['scope']), reason: 'no include rules: everyone is in scope' };
  const noInclude: Decision = {
    field: 'scope',
    value: false,
    rule: ctx.rule(['scope', 'include']),
    reason: 'matches none of the include rules',
  };
  const included = include.map(
    ({ condition, rule }): Decision => ({ field: 'scope', value: true, rule, reason: `included: ${condition.describe}` }),
  );
  const excluded = exclude.map(
    ({ condition, rule }): Decision => ({ field: 'scope', value: false, rule, reason: `excluded: ${condition.describe}` }),
  );

  return (subject, out) => {
    let decision: Decision = everyone;
    if (include.length > 0) {
      const i = include.findIndex((r) => r.condition.test(subject, out));
      if (i < 0) {
        out.reasons.push(noInclude);
        return false;
      }
      decision = included[i];
    }
    const e = exclude.findIndex((r) => r.condition.test(subject, out));
    if (e >= 0) {
      out.reasons.push(excluded[e]);
      return false;
    }
    out.reasons.push(decision);
    return true;
  };
}

function compileList(list: ScopeSpec['include'], name: 'include' | 'exclude', ctx: CompileContext) {
  const rules: Array<{ condition: Condition; rule: string }> = [];
  (list ?? []).forEach((spec, i) => {
    const condition = compileCondition(spec, ['scope', name, i], ctx);
    if (condition) rules.push({ condition, rule: ctx.rule(['scope', name, i]) });
  });
  return rules;
}
