import type { CompileContext, Output } from './context.js';
import { recordIssue } from './context.js';
import { ExpressionFailure } from './expressions.js';
import type { DocPath } from './locate.js';
import type { Constant, FlagSpec, SourceSpec } from './spec.js';
import { attribute, parseFlag, text, type Subject } from './values.js';

/** A compiled value source (`from`, `expr` or `value`). */
export interface Getter {
  /** The raw value for one subject; an ExpressionFailure when the expression threw. */
  read(subject: Subject): unknown;
  /** The RecordIssue field: the attribute name for `from`, the mapping field otherwise. */
  readonly field: string;
  /** For reasons: `from EmailAddress`, `expression`, `constant`. */
  readonly describe: string;
  /** Decision.rule of this source. */
  readonly rule: string;
  readonly fallback?: Constant;
}

/** The keys of a source object (or the shorthand) that pick the source. */
function sourceKeys(spec: object): string[] {
  return ['from', 'expr', 'value'].filter((k) => (spec as Record<string, unknown>)[k] !== undefined);
}

/**
 * Compiles a source spec. `field` names the mapping field for issues when the value is not an attribute.
 * Reports "exactly one of from/expr/value" problems; returns undefined after a problem.
 */
export function compileSource(spec: SourceSpec, path: DocPath, ctx: CompileContext, field: string): Getter | undefined {
  const rule = ctx.rule(path);
  if (typeof spec === 'string') return fromAttribute(spec, rule);
  const keys = sourceKeys(spec);
  if (keys.length !== 1) {
    ctx.problem(path, keys.length === 0 ? 'needs one of from, expr or value' : `use only one of ${keys.join(', ')}`);
    return undefined;
  }
  if (spec.from !== undefined) return { ...fromAttribute(spec.from, rule), fallback: spec.default };
  if (spec.expr !== undefined) {
    const index = ctx.expression(spec.expr, [...path, 'expr']);
    if (index === undefined) return undefined;
    return { read: (s) => s.exprValues[index], field, describe: 'expression', rule, fallback: spec.default };
  }
  const value = spec.value ?? null;
  return { read: () => value, field, describe: 'constant', rule, fallback: spec.default };
}

function fromAttribute(name: string, rule: string): Getter {
  return { read: (s) => attribute(s, name), field: name, describe: `from ${name}`, rule };
}

/**
 * The trimmed text of a getter for one subject, with its `default` applied when empty. Undefined (after
 * pushing an issue) when the expression failed.
 */
export function readText(getter: Getter, subject: Subject, out: Output): string | undefined {
  const raw = getter.read(subject);
  if (raw instanceof ExpressionFailure) {
    out.issues.push(recordIssue(subject.identity, getter.field, `expression failed: ${raw.message}`));
    return undefined;
  }
  const t = text(raw);
  if (t === '' && getter.fallback !== undefined && getter.fallback !== null) return text(getter.fallback);
  return t;
}

/** A compiled yes/no source: the value, or undefined after pushing an issue. */
export interface FlagGetter {
  evaluate(subject: Subject, out: Output): boolean | undefined;
  readonly describe: string;
  readonly rule: string;
}

/** Compiles a flag spec (bare boolean, bare attribute name, or object with `negate`/`default`). */
export function compileFlag(spec: FlagSpec, path: DocPath, ctx: CompileContext, field: string): FlagGetter | undefined {
  const rule = ctx.rule(path);
  if (typeof spec === 'boolean') return { evaluate: () => spec, describe: 'constant', rule };
  const { negate = false, default: fallback, ...source } = typeof spec === 'string' ? { from: spec } : spec;
  const getter = compileSource(source, path, ctx, field);
  if (!getter) return undefined;
  const describe = negate ? `${getter.describe}, negated` : getter.describe;
  return {
    describe,
    rule,
    evaluate(subject, out) {
      const raw = getter.read(subject);
      if (raw instanceof ExpressionFailure) {
        out.issues.push(recordIssue(subject.identity, getter.field, `expression failed: ${raw.message}`));
        return undefined;
      }
      // `default: null`: an empty source gives no value, so the PBX keeps what it has (see the 3CX `Disabled`).
      if (fallback !== undefined && text(raw) === '') return fallback ?? undefined;
      const flag = parseFlag(raw);
      if (flag === undefined) {
        out.issues.push(recordIssue(subject.identity, getter.field, `"${text(raw)}" is not a yes/no value (use 1/0, true/false, yes/no)`));
        return undefined;
      }
      return negate ? !flag : flag;
    },
  };
}
