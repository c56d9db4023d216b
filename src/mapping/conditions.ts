import type { IdentityOrigin } from '../model/index.js';
import type { CompileContext, Output } from './context.js';
import { recordIssue } from './context.js';
import { ExpressionFailure } from './expressions.js';
import type { DocPath } from './locate.js';
import type { ConditionSpec } from './spec.js';
import { attribute, texts, type Subject } from './values.js';

/** A compiled condition. */
export interface Condition {
  /** True when every test of the condition holds. An expression that throws pushes an issue and fails. */
  test(subject: Subject, out: Output): boolean;
  /** Human text for reasons: `member of group "Sales" and department = "Field"`. */
  readonly describe: string;
}

type Test = (subject: Subject, out: Output) => boolean;

/** The condition keys (role rules add `role` and `from` beside them). */
export const CONDITION_KEYS = ['attribute', 'equals', 'oneOf', 'regex', 'present', 'group', 'ou', 'expr', 'caseSensitive'] as const;

/**
 * Compiles a condition. An empty condition always holds (a role rule without a test). Returns undefined
 * after reporting a problem (an invalid regular expression, an expression syntax error).
 */
export function compileCondition(spec: ConditionSpec, path: DocPath, ctx: CompileContext): Condition | undefined {
  const cs = spec.caseSensitive === true;
  const fold = cs ? (t: string) => t : (t: string) => t.toLowerCase();
  const tests: Test[] = [];
  const words: string[] = [];
  let ok = true;

  if (spec.attribute !== undefined) {
    const name = spec.attribute;
    const values = (s: Subject) => texts(attribute(s, name));
    if (spec.equals !== undefined) {
      const want = fold(String(spec.equals));
      tests.push((s) => values(s).some((v) => fold(v) === want));
      words.push(`${name} = "${spec.equals}"`);
    }
    if (spec.oneOf !== undefined) {
      const set = new Set(spec.oneOf.map((v) => fold(String(v))));
      tests.push((s) => values(s).some((v) => set.has(fold(v))));
      words.push(`${name} is one of ${spec.oneOf.map((v) => `"${v}"`).join(', ')}`);
    }
    if (spec.regex !== undefined) {
      let re: RegExp | undefined;
      try {
        re = new RegExp(spec.regex, cs ? '' : 'i');
      } catch (err) {
        ctx.problem([...path, 'regex'], `invalid regular expression: ${(err as Error).message}`);
        ok = false;
      }
      if (re) {
        const r = re;
        tests.push((s) => values(s).some((v) => r.test(v)));
        words.push(`${name} matches /${spec.regex}/`);
      }
    }
    if (spec.present !== undefined) {
      const want = spec.present;
      tests.push((s) => values(s).length > 0 === want);
      words.push(want ? `${name} is set` : `${name} is empty`);
    }
    if (spec.equals === undefined && spec.oneOf === undefined && spec.regex === undefined && spec.present === undefined) {
      ctx.problem(path, 'attribute needs a test: equals, oneOf, regex or present');
      ok = false;
    }
  }

  if (spec.group !== undefined) {
    const groups = Array.isArray(spec.group) ? spec.group : [spec.group];
    const set = new Set(groups.map(fold));
    tests.push((s) => s.identity.groups.some((g) => set.has(fold(g))));
    words.push(`member of group ${groups.map((g) => `"${g}"`).join(' or ')}`);
  }

  if (spec.ou !== undefined) {
    const ous = Array.isArray(spec.ou) ? spec.ou : [spec.ou];
    const matchers = ous.map((ou) => ouMatcher(ou, cs));
    tests.push((s) => matchers.some((m) => m(s.identity.origin) !== undefined));
    words.push(`inside ${ous.map((o) => `"${o}"`).join(' or ')}`);
  }

  if (spec.expr !== undefined) {
    const index = ctx.expression(spec.expr, [...path, 'expr']);
    if (index === undefined) ok = false;
    else {
      tests.push((s, out) => {
        const v = s.exprValues[index];
        if (v instanceof ExpressionFailure) {
          out.issues.push(recordIssue(s.identity, 'expr', `expression at ${ctx.rule(path)} failed: ${v.message}`));
          return false;
        }
        return truthy(v);
      });
      words.push(`expression ${spec.expr} is true`);
    }
  }

  if (!ok) return undefined;
  const describe = words.length > 0 ? words.join(' and ') : 'always';
  if (tests.length === 1) return { test: tests[0], describe };
  return { test: (s, out) => tests.every((t) => t(s, out)), describe };
}

/** JSONata-like truthiness: empty strings, zero, empty arrays, null and false are false. */
function truthy(v: unknown): boolean {
  if (Array.isArray(v)) return v.some(truthy);
  return Boolean(v);
}

/**
 * A matcher for an OU written in a mapping. A value starting with `/` is an org-unit path (Google): it
 * matches that unit and everything below it. Anything else is a DN suffix (LDAP/AD): it matches the
 * identity's DN or OU when equal or a parent. Returns the matched length (how specific) or undefined.
 */
export function ouMatcher(ou: string, caseSensitive = false): (origin: IdentityOrigin | undefined) => number | undefined {
  if (ou.startsWith('/')) {
    const want = fold(ou.replace(/\/+$/, '') || '/', caseSensitive);
    return (origin) => {
      const have = origin?.ou === undefined ? undefined : fold(origin.ou, caseSensitive);
      if (have === undefined) return undefined;
      if (have === want || want === '/' || have.startsWith(`${want}/`)) return want.length;
      return undefined;
    };
  }
  const want = normalizeDn(ou, caseSensitive);
  return (origin) => {
    for (const dn of [origin?.dn, origin?.ou]) {
      if (dn === undefined) continue;
      const have = normalizeDn(dn, caseSensitive);
      if (have === want || have.endsWith(`,${want}`)) return want.length;
    }
    return undefined;
  };
}

function fold(t: string, caseSensitive: boolean): string {
  return caseSensitive ? t : t.toLowerCase();
}

/** `OU=Sales, DC=Example,DC=com` → `ou=sales,dc=example,dc=com`: spaces around separators do not matter. */
function normalizeDn(dn: string, caseSensitive: boolean): string {
  return fold(dn.trim().replace(/\s*([,=])\s*/g, '$1'), caseSensitive);
}
