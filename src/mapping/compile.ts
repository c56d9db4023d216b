import { noItems, type Identity, type IdentityKey, type UserFields } from '../model/index.js';
import type { CompileContext, Output } from './context.js';
import { compileDepartment } from './department.js';
import { compileExtension } from './extension.js';
import { compileFields, fieldRulePaths } from './fields.js';
import { compileRole } from './roles.js';
import { compileScope } from './scope.js';
import { fieldInputs, splitUnsupplied } from './supplied.js';
import type { MappingSpec } from './spec.js';
import type { Decision, DesiredUser, Mapping, MappingResult, RemovalPolicy } from './types.js';
import type { Subject } from './values.js';

const NO_VALUES: readonly unknown[] = [];
const NO_REASONS: Decision[] = [];
/** Where decisions go when nobody asked for them: steps push, nothing is kept. */
const DISCARD = { push: () => 0 } as unknown as Decision[];

/**
 * Compiles a schema-valid mapping spec into a Mapping. Problems (bad regular expressions, expression syntax
 * errors, contradictory settings) go to the context; the caller refuses the mapping when there are any.
 *
 * The per-identity work is a fixed list of synchronous steps over plain values; JSONata runs only for
 * mappings that use `expr`, all expressions of one identity at once.
 */
export function compileMapping(spec: MappingSpec, ctx: CompileContext, defaults: { removal: RemovalPolicy; sourceHash: string }): Mapping {
  const scope = compileScope(spec.scope, ctx);
  const department = compileDepartment(spec.department, ctx);
  const steps = compileFields(spec, ctx);
  if (department) steps.push(department.step);
  const role = compileRole(spec.role, ctx);
  if (role) steps.push(role);
  // After the department: per-department ranges depend on it.
  const extension = compileExtension(spec.extension, ctx);
  const inputs = fieldInputs(spec);

  const removal: RemovalPolicy = { ...defaults.removal, ...spec.removal };
  const createDepartments = department?.create ?? false;
  const sendWelcome = spec.welcome ?? true;
  const adopt = [...(spec.adopt ?? [])];
  const expressions = ctx.expressions;
  const deleted: Decision = { field: 'scope', value: false, rule: ctx.rule(['scope']), reason: 'deleted in the source' };
  const rules: Partial<Record<keyof UserFields, string>> = {};
  for (const [field, path] of fieldRulePaths(spec)) rules[field] = ctx.rule(path);
  if (spec.department !== undefined) rules.department = ctx.rule(['department']);
  if (spec.department?.extra !== undefined) rules.extraDepartments = ctx.rule(['department', 'extra']);
  if (spec.role !== undefined) rules.role = ctx.rule(['role']);

  return {
    file: ctx.file,
    removal,
    deterministic: expressions.size === 0,
    sourceHash: defaults.sourceHash,
    rules,
    ruleFile: ctx.ruleFile,
    map(identity: Identity, options?: { explain?: boolean }): MappingResult | Promise<MappingResult> {
      // Synchronous unless JSONata has to run: a promise and a turn of the event loop per identity were a
      // noticeable share of reading 100,000 rows.
      if (expressions.size > 0 && !identity.deleted) return expressions.evaluateAll(identity).then((values) => mapOne(identity, values, options));
      return mapOne(identity, NO_VALUES, options);
    },
  };

  function mapOne(identity: Identity, exprValues: readonly unknown[], options?: { explain?: boolean }): MappingResult {
    const explain = options?.explain !== false;
    const key: IdentityKey = { source: identity.source, anchor: identity.anchor };
    if (identity.deleted) return { kind: 'out-of-scope', key, reasons: [deleted] };
    const subject: Subject = { identity, exprValues };
    const out: Output = { fields: {}, issues: [], reasons: explain ? [] : DISCARD };
    const reasons = () => (explain ? out.reasons : NO_REASONS);
    if (!scope(subject, out)) return { kind: 'out-of-scope', key, reasons: reasons() };
    for (const step of steps) step(subject, out);
    const request = extension(subject, out);
    if (out.issues.length > 0 || request === undefined) return { kind: 'invalid', key, issues: out.issues, reasons: reasons() };
    const createOnly = identity.partialAttributes ? splitUnsupplied(inputs, subject, out, explain) : undefined;
    const user: DesiredUser = {
      key,
      fields: out.fields,
      extension: request,
      createDepartments,
      sendWelcome,
      adopt: adopt.length ? [...adopt] : noItems(),
      disabledInSource: identity.disabled,
      reasons: reasons(),
      origin: identity.origin,
    };
    if (identity.matchBound) user.matchBound = identity.matchBound;
    if (createOnly) user.createOnly = createOnly;
    return { kind: 'user', user };
  }
}
