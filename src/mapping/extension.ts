import type { CompileContext, Output } from './context.js';
import { recordIssue } from './context.js';
import { extensionProblem } from './numbering.js';
import { compileSource, readText, type Getter } from './source.js';
import type { ExtensionSpec, ExtensionTransform } from './spec.js';
import type { ExtensionRequest, NumberRange } from './types.js';
import type { Subject } from './values.js';

/** Decides the ExtensionRequest of one subject (after the department, whose ranges may apply). */
export type ExtensionStep = (subject: Subject, out: Output) => ExtensionRequest | undefined;

/**
 * Compiles `extension`: a fixed number from an attribute or expression (after `transform`), checked against
 * the numbering rules (never an emergency or reserved number); otherwise a request to allocate from the
 * main department's ranges, the mapping's ranges or the global ones. Stickiness and the allocation itself
 * are the planner's.
 */
export function compileExtension(spec: ExtensionSpec | undefined, ctx: CompileContext): ExtensionStep {
  const s = spec ?? {};
  let getter: Getter | undefined;
  if (s.from !== undefined && s.expr !== undefined) ctx.problem(['extension'], 'use only one of from, expr');
  else if (s.from !== undefined || s.expr !== undefined) getter = compileSource({ from: s.from, expr: s.expr }, ['extension'], ctx, 'extension');

  const ranges = s.ranges ?? ctx.numbering.ranges;
  if (s.ranges) checkRanges(s.ranges, ['extension', 'ranges'], ctx);
  const byDepartment = new Map<string, NumberRange[]>();
  for (const [department, list] of Object.entries(s.departmentRanges ?? {})) {
    checkRanges(list, ['extension', 'departmentRanges', department], ctx);
    byDepartment.set(department.toLowerCase(), list);
  }
  const allocate = (s.ifMissing ?? 'allocate') === 'allocate';
  if (allocate && ranges.length === 0) {
    ctx.problem(['extension'], 'no ranges to allocate extensions from: set numbering.ranges in service.yml or extension.ranges here');
  }
  const transform = compileTransform(s.transform);
  const rule = ctx.rule(['extension']);
  const rangesRule = ctx.rule(s.ranges ? ['extension', 'ranges'] : ['extension']);
  const departmentRule = ctx.rule(['extension', 'departmentRanges']);
  const missingReason = getter ? `${getter.describe} is empty: allocate` : 'allocated from ranges';

  return (subject, out) => {
    const value = getter ? readText(getter, subject, out) : '';
    if (value === undefined) return undefined;
    if (value === '') {
      if (!allocate) {
        out.issues.push(recordIssue(subject.identity, getter?.field ?? 'extension', 'extension is required'));
        return undefined;
      }
      const own = out.department === undefined ? undefined : byDepartment.get(out.department.toLowerCase());
      const request: ExtensionRequest = { kind: 'allocate', ranges: own ?? ranges, rule: own ? departmentRule : rangesRule };
      out.reasons.push({
        field: 'extension',
        rule: request.rule,
        reason: own ? `${missingReason} from the ranges of department ${out.department}` : missingReason,
      });
      return request;
    }
    const field = getter?.field ?? 'extension';
    const result = transform(value);
    if (typeof result !== 'string') {
      out.issues.push(recordIssue(subject.identity, field, result.problem));
      return undefined;
    }
    const problem = extensionProblem(result, ctx.numbering);
    if (problem) {
      out.issues.push(recordIssue(subject.identity, field, problem));
      return undefined;
    }
    out.reasons.push({ field: 'extension', value: result, rule, reason: getter?.describe ?? 'fixed' });
    return { kind: 'fixed', value: result, rule };
  };
}

/** The transform of a non-empty value: the extension, or why there is none. */
function compileTransform(t: ExtensionTransform | undefined): (value: string) => string | { problem: string } {
  if (t === undefined || t === 'none') return (v) => v;
  if (t === 'digits') {
    return (v) => {
      const d = v.replace(/\D+/g, '');
      return d === '' ? { problem: `"${v}" has no digits` } : d;
    };
  }
  const n = t.lastDigits;
  return (v) => {
    const d = v.replace(/\D+/g, '');
    return d.length < n ? { problem: `"${v}" has fewer than ${n} digits` } : d.slice(-n);
  };
}

function checkRanges(ranges: NumberRange[], path: Array<string | number>, ctx: CompileContext): void {
  ranges.forEach((r, i) => {
    if (r.from.length !== r.to.length) ctx.problem([...path, i], `range ${r.from}-${r.to}: both ends need the same number of digits`);
    else if (r.from > r.to) ctx.problem([...path, i], `range ${r.from}-${r.to}: from is after to`);
  });
}
