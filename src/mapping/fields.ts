import { noItems, shared, type PhoneSpec, type UserFields } from '../model/index.js';
import type { CompileContext, Output, Step } from './context.js';
import { recordIssue } from './context.js';
import { ExpressionFailure } from './expressions.js';
import type { DocPath } from './locate.js';
import { normalizeMac, splitNumbers, toE164 } from './phone.js';
import { compileFlag, compileSource, readText, type Getter } from './source.js';
import type { DidsSpec, FieldsSpec, FlagSpec, MappingSpec, SourceSpec } from './spec.js';
import type { Decision } from './types.js';
import { attribute, text, texts, type Subject } from './values.js';

/** A plain, strict-enough address check: a local part, `@`, and a domain with at least one dot. */
const EMAIL = /^[a-z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$/;

/** How one text field treats its value: the field value, or a problem message. */
type Normalize = (value: string, region: string) => unknown | Problem;

class Problem {
  constructor(readonly message: string) {}
}

type TextFieldName = 'firstName' | 'lastName' | 'displayName' | 'email' | 'mobile' | 'outboundCallerId' | 'language' | 'vmPin';

interface TextFieldRule {
  /** Value of an empty source; `required` makes the record invalid, `absent` leaves the field out. */
  empty: null | '' | 'required' | 'absent';
  normalize?: Normalize;
  secret?: boolean;
}

const phone: Normalize = (v, region) => toE164(v, region) ?? new Problem(`"${v}" is not a valid phone number (default region ${region})`);

const TEXT_FIELDS: Record<TextFieldName, TextFieldRule> = {
  firstName: { empty: 'required' },
  lastName: { empty: '' },
  displayName: { empty: null },
  email: {
    empty: null,
    normalize: (v) => {
      const lower = v.toLowerCase();
      return EMAIL.test(lower) ? lower : new Problem(`"${v}" is not a valid e-mail address`);
    },
  },
  mobile: { empty: null, normalize: phone },
  outboundCallerId: { empty: null, normalize: phone },
  language: { empty: null },
  vmPin: {
    // A missing PIN is left to the target, which keeps the current one or generates one.
    empty: 'absent',
    secret: true,
    normalize: (v) => (!/^\d+$/.test(v) ? new Problem('VM PIN must be digits only') : v.length < 4 ? new Problem('VM PIN must be at least 4 digits') : v),
  },
};

const REQUIRED_MESSAGE: Partial<Record<TextFieldName, string>> = { firstName: 'first name is required' };

/** Compiles one text field (names, e-mail, phone numbers, language, VM PIN). */
function textField(name: TextFieldName, spec: SourceSpec, path: DocPath, ctx: CompileContext, region: string): Step | undefined {
  const getter = compileSource(spec, path, ctx, name);
  if (!getter) return undefined;
  const rule = TEXT_FIELDS[name];
  const emptyReason = `${getter.describe} is empty`;
  const emptyDecision: Decision | undefined =
    rule.empty === 'required' ? undefined : { field: name, value: rule.empty === 'absent' ? undefined : rule.empty, rule: getter.rule, reason: rule.empty === 'absent' ? `${emptyReason}: left to the PBX` : emptyReason };
  return (s, out) => {
    const value = readText(getter, s, out);
    if (value === undefined) return;
    if (value === '') {
      if (rule.empty === 'required') out.issues.push(recordIssue(s.identity, getter.field, REQUIRED_MESSAGE[name] ?? `${name} is required`));
      else {
        if (rule.empty !== 'absent') (out.fields as Record<string, unknown>)[name] = rule.empty;
        out.reasons.push(emptyDecision as Decision);
      }
      return;
    }
    const result = rule.normalize ? rule.normalize(value, region) : value;
    if (result instanceof Problem) {
      out.issues.push(recordIssue(s.identity, getter.field, result.message));
      return;
    }
    (out.fields as Record<string, unknown>)[name] = result;
    out.reasons.push({ field: name, value: rule.secret ? '***' : result, rule: getter.rule, reason: getter.describe });
  };
}

/** Compiles a yes/no field. */
function flagField(name: keyof UserFields, spec: FlagSpec, path: DocPath, ctx: CompileContext): Step | undefined {
  const flag = compileFlag(spec, path, ctx, name);
  if (!flag) return undefined;
  const decisions = {
    true: { field: name, value: true, rule: flag.rule, reason: flag.describe } as Decision,
    false: { field: name, value: false, rule: flag.rule, reason: flag.describe } as Decision,
  };
  return (s, out) => {
    const value = flag.evaluate(s, out);
    if (value === undefined) return;
    (out.fields as Record<string, unknown>)[name] = value;
    out.reasons.push(value ? decisions.true : decisions.false);
  };
}

/** Compiles `dids`: every number of the listed attributes (or the expression), E.164, sorted and unique. */
function didsField(spec: DidsSpec | string, ctx: CompileContext, region: string): Step | undefined {
  const s: DidsSpec = typeof spec === 'string' ? { from: spec } : spec;
  if ((s.from === undefined) === (s.expr === undefined)) {
    ctx.problem(['dids'], 'needs exactly one of from or expr');
    return undefined;
  }
  const rule = ctx.rule(['dids']);
  let read: (subject: Subject, out: Output) => Array<{ field: string; values: string[] }> | undefined;
  let describe: string;
  if (s.from !== undefined) {
    const names = Array.isArray(s.from) ? s.from : [s.from];
    describe = `from ${names.join(', ')}`;
    read = (subject) => names.map((field) => ({ field, values: texts(attribute(subject, field)) }));
  } else {
    const index = ctx.expression(s.expr as string, ['dids', 'expr']);
    if (index === undefined) return undefined;
    describe = 'expression';
    read = (subject, out) => {
      const v = subject.exprValues[index];
      if (v instanceof ExpressionFailure) {
        out.issues.push(recordIssue(subject.identity, 'dids', `expression failed: ${v.message}`));
        return undefined;
      }
      return [{ field: 'dids', values: texts(v) }];
    };
  }
  return (subject, out) => {
    const cells = read(subject, out);
    if (cells === undefined) return;
    const all = new Set<string>();
    let bad = false;
    for (const cell of cells) {
      for (const value of cell.values) {
        const { numbers, invalid } = splitNumbers(value, region);
        for (const n of numbers) all.add(n);
        for (const piece of invalid) {
          out.issues.push(recordIssue(subject.identity, cell.field, `"${piece}" is not a valid phone number (default region ${region})`));
          bad = true;
        }
      }
    }
    if (bad) return;
    const dids = [...all].sort();
    out.fields.dids = dids.length ? dids : noItems();
    out.reasons.push({ field: 'dids', value: dids, rule, reason: describe });
  };
}

/** Compiles `phones`: MAC (normalised; empty skips the phone), model and template. */
function phonesField(specs: NonNullable<MappingSpec['phones']>, ctx: CompileContext): Step | undefined {
  const phones: Array<{ mac: Getter; model?: Getter; template?: Getter }> = [];
  let ok = true;
  specs.forEach((p, i) => {
    const path = ['phones', i];
    const mac = compileSource(p.mac, [...path, 'mac'], ctx, 'mac');
    const model = p.model === undefined ? undefined : compileSource(p.model, [...path, 'model'], ctx, 'model');
    const template = p.template === undefined ? undefined : compileSource(p.template, [...path, 'template'], ctx, 'template');
    if (!mac || (p.model !== undefined && !model) || (p.template !== undefined && !template)) ok = false;
    else phones.push({ mac, model, template });
  });
  if (!ok) return undefined;
  const rule = ctx.rule(['phones']);
  return (s, out) => {
    const byMac = new Map<string, PhoneSpec>();
    for (const p of phones) {
      const raw = readText(p.mac, s, out);
      if (raw === undefined || raw === '') continue;
      const mac = normalizeMac(raw);
      if (mac === undefined) {
        out.issues.push(recordIssue(s.identity, p.mac.field, `"${raw}" is not a MAC address (12 hex digits)`));
        continue;
      }
      const phone: PhoneSpec = { mac };
      const model = p.model && readText(p.model, s, out);
      const template = p.template && readText(p.template, s, out);
      if (model) phone.model = model;
      if (template) phone.template = template;
      byMac.set(mac, phone);
    }
    const list = [...byMac.values()].sort((a, b) => (a.mac < b.mac ? -1 : a.mac > b.mac ? 1 : 0));
    out.fields.phones = list.length ? list : noItems();
    out.reasons.push({ field: 'phones', value: list, rule, reason: 'from the phone columns' });
  };
}

/** Compiles `options`: the listed attributes, as-is, when not empty. */
function optionsField(names: string[], ctx: CompileContext): Step {
  const rule = ctx.rule(['options']);
  // In sorted order, which is the normalised form (reconcile/fields.ts): the planner then uses the record as
  // it is instead of copying it for every user.
  // `__proto__` as a key would set the prototype, not add an option (and did nothing before either).
  const sorted = [...names].sort().filter((name) => name !== '__proto__');
  // Which options the previous identity had, and an object of exactly those keys (in order) to copy from.
  // Consecutive rows nearly always carry the same options, so most users' options are a copy of the template
  // with its values replaced: one allocation with the shape known in advance, instead of building pairs.
  const values: string[] = new Array<string>(sorted.length).fill('');
  let present: boolean[] = sorted.map(() => false);
  let template: Record<string, string> | undefined;
  return (s, out) => {
    let same = template !== undefined;
    for (let i = 0; i < sorted.length; i++) {
      const v = text(attribute(s, sorted[i]));
      values[i] = v;
      if ((v !== '') !== present[i]) same = false;
    }
    if (!same) {
      present = values.map((v) => v !== '');
      // WARNING: built with fromEntries, not `options[name] = v` on `{}`: V8 turns an object that gets more
      // than a dozen properties by keyed stores into a hash table (~1.6 KB for 27 options instead of
      // ~0.3 KB), and a 100,000-user import holds several copies of every user's options. A copy of this
      // template keeps its fast shape; replacing the value of a key it has does not change that.
      template = Object.fromEntries(sorted.filter((_, i) => present[i]).map((name) => [name, '']));
    }
    // Object.assign, not a spread: see shared() for why a spread copy must not be frozen.
    const options: Record<string, string> = Object.assign({}, template);
    for (let i = 0; i < sorted.length; i++) if (present[i]) options[sorted[i]] = values[i];
    // Frozen: the plan and the embedded store keep this same object instead of a copy each.
    shared(options);
    out.fields.options = options;
    out.reasons.push({ field: 'options', value: options, rule, reason: 'carried through as-is' });
  };
}

const NAME_FIELDS = ['firstName', 'lastName', 'displayName', 'email', 'mobile', 'outboundCallerId', 'language'] as const;
const FLAG_FIELDS = ['require2fa', 'hideInPhonebook', 'recordCalls', 'enabled'] as const;

/** Where each field the field sections set is written in the mapping (see Mapping.rules). */
export function fieldRulePaths(spec: MappingSpec): Array<[keyof UserFields, DocPath]> {
  const out: Array<[keyof UserFields, DocPath]> = [];
  for (const name of NAME_FIELDS) if (spec.fields[name] !== undefined) out.push([name, ['fields', name]]);
  if (spec.dids !== undefined) out.push(['dids', ['dids']]);
  if (spec.voicemail?.enabled !== undefined) out.push(['vmEnabled', ['voicemail', 'enabled']]);
  if (spec.voicemail?.pin !== undefined) out.push(['vmPin', ['voicemail', 'pin']]);
  for (const name of FLAG_FIELDS) if (spec[name] !== undefined) out.push([name, [name]]);
  if (spec.phones !== undefined) out.push(['phones', ['phones']]);
  if (spec.options !== undefined) out.push(['options', ['options']]);
  return out;
}

/**
 * Compiles every field section of a mapping into Steps, in a fixed order. Sections not in the mapping give
 * no Step: those fields stay absent from the desired user and are never changed in the PBX.
 */
export function compileFields(spec: MappingSpec, ctx: CompileContext): Step[] {
  const region = spec.defaultRegion ?? 'US';
  const steps: Array<Step | undefined> = [];
  const fields: FieldsSpec = spec.fields;
  for (const name of NAME_FIELDS) {
    const f = fields[name];
    if (f !== undefined) steps.push(textField(name, f, ['fields', name], ctx, region));
  }
  if (spec.dids !== undefined) steps.push(didsField(spec.dids, ctx, region));
  if (spec.voicemail?.enabled !== undefined) steps.push(flagField('vmEnabled', spec.voicemail.enabled, ['voicemail', 'enabled'], ctx));
  if (spec.voicemail?.pin !== undefined) steps.push(textField('vmPin', spec.voicemail.pin, ['voicemail', 'pin'], ctx, region));
  for (const name of FLAG_FIELDS) {
    const f = spec[name];
    if (f !== undefined) steps.push(flagField(name, f, [name], ctx));
  }
  if (spec.phones !== undefined) steps.push(phonesField(spec.phones, ctx));
  if (spec.options !== undefined) steps.push(optionsField(spec.options, ctx));
  return steps.filter((s): s is Step => s !== undefined);
}
