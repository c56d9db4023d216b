import type { UserFields } from '../model/index.js';
import type { Output } from './context.js';
import type { FlagSpec, MappingSpec, SourceSpec } from './spec.js';
import type { Decision } from './types.js';
import { attribute, type Subject } from './values.js';

/**
 * A field read only from attributes (every source of it a `from`), with those attributes. A field that any
 * rule takes from an expression, a constant, the groups or the OU is always supplied, and is not listed.
 */
export interface FieldInputs {
  field: keyof UserFields;
  attributes: readonly string[];
  /** How explain words a field left to the PBX: "MAC, Model, Template not in the record". */
  missing: string;
}

function sourceAttribute(spec: SourceSpec | undefined): string | undefined {
  if (spec === undefined) return undefined;
  if (typeof spec === 'string') return spec;
  return spec.from !== undefined && spec.expr === undefined && spec.value === undefined ? spec.from : undefined;
}

function flagAttribute(spec: FlagSpec | undefined): string | undefined {
  if (spec === undefined || typeof spec === 'boolean') return undefined;
  if (typeof spec === 'string') return spec;
  return spec.from !== undefined && spec.expr === undefined && spec.value === undefined ? spec.from : undefined;
}

/**
 * Which attributes each field of `spec` is read from, for the fields read from attributes alone (see
 * {@link FieldInputs}). The extension and the options are not listed: the extension is the record's number
 * (a missing one is allocated), and options are compared per key the record has anyway.
 */
export function fieldInputs(spec: MappingSpec): FieldInputs[] {
  const out: FieldInputs[] = [];
  const add = (field: keyof UserFields, attributes: Array<string | undefined>): void => {
    if (attributes.length === 0 || attributes.some((a) => a === undefined)) return;
    const names = [...new Set(attributes as string[])];
    out.push({ field, attributes: names, missing: `${names.join(', ')} not in the record` });
  };
  const fields = spec.fields;
  for (const name of ['lastName', 'displayName', 'email', 'mobile', 'outboundCallerId', 'language'] as const) {
    if (fields[name] !== undefined) add(name, [sourceAttribute(fields[name])]);
  }
  if (spec.dids !== undefined) {
    const dids = typeof spec.dids === 'string' ? { from: spec.dids } : spec.dids;
    if (dids.expr === undefined && dids.from !== undefined) add('dids', Array.isArray(dids.from) ? dids.from : [dids.from]);
  }
  if (spec.voicemail?.enabled !== undefined) add('vmEnabled', [flagAttribute(spec.voicemail.enabled)]);
  if (spec.voicemail?.pin !== undefined) add('vmPin', [sourceAttribute(spec.voicemail.pin)]);
  for (const name of ['require2fa', 'hideInPhonebook', 'recordCalls', 'enabled'] as const) {
    if (spec[name] !== undefined) add(name, [flagAttribute(spec[name])]);
  }
  // A phone is there when its MAC is: a file with the MAC column supplies the phones (a Model or Template
  // column it lacks then leaves those empty, as an empty cell would).
  if (spec.phones?.length) add('phones', spec.phones.map((p) => sourceAttribute(p.mac)));
  const department = spec.department;
  if (department?.from !== undefined && department.extra !== 'mappedGroups') add('department', [department.from]);
  // Rules that set a role of their own decide on conditions, not on a cell: the role is then always supplied.
  const rules = spec.role?.rules;
  if (rules?.length && rules.every((r) => r.role === undefined)) add('role', rules.map((r) => r.from));
  return out;
}

/**
 * For a record that lists only the attributes its file has (Identity.partialAttributes: a CSV file without
 * some columns), moves each field none of whose attributes the record has from `out.fields` to the returned
 * create-only values: a new user still gets the mapping's value for it (its default), an existing user keeps
 * what the PBX has. Without this, a file of four columns would reset every user's role, department, phones
 * and numbers to the defaults. Undefined when the record has every input.
 */
export function splitUnsupplied(inputs: readonly FieldInputs[], subject: Subject, out: Output, explain: boolean): Partial<UserFields> | undefined {
  let createOnly: Partial<UserFields> | undefined;
  for (const input of inputs) {
    if (!(input.field in out.fields)) continue;
    if (input.attributes.some((a) => attribute(subject, a) !== undefined)) continue;
    createOnly ??= {};
    (createOnly as Record<string, unknown>)[input.field] = out.fields[input.field];
    delete out.fields[input.field];
    if (explain) {
      // The field's own decision says what a new user gets; it now also says why an existing user keeps its value.
      // (Decisions are shared between records: replaced, never changed.)
      const reasons = out.reasons;
      for (let i = 0; i < reasons.length; i++) {
        const d = reasons[i];
        if (d.field !== input.field) continue;
        reasons[i] = { ...d, reason: `${input.missing}: only for a new user (${d.reason}); an existing user keeps what the PBX has` } satisfies Decision;
      }
    }
  }
  return createOnly;
}
