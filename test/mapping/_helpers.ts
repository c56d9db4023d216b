import type { ConfigProblem } from '../../src/errors/index.js';
import type { Identity } from '../../src/model/index.js';
import type { DesiredUser, Mapping, MappingResult, RemovalPolicy } from '../../src/mapping/types.js';
import { parseMapping, type MappingOptions } from '../../src/mapping/load.js';
import type { NumberingPolicy } from '../../src/reconcile/types.js';

/** Numbering used by the mapping tests: 1000-1999 to allocate from, 1900-1999 reserved. */
export const numbering: NumberingPolicy = {
  ranges: [{ from: '1000', to: '1999' }],
  reserved: [{ from: '1900', to: '1999' }],
  emergency: [],
};

export const removal: RemovalPolicy = { action: 'disable', graceDays: 30 };

export const options: MappingOptions = { numbering, removal };

/** A valid identity with overrides (attributes are replaced, not merged). */
export function identity(partial: Partial<Identity> = {}): Identity {
  return {
    source: 'hr',
    anchor: 'a-1',
    attributes: { FirstName: 'Ann', LastName: 'Lee' },
    groups: [],
    disabled: false,
    origin: { file: 'in.csv', line: 7 },
    ...partial,
  };
}

/** Compiles mapping text named `test.yml`; fails the test with the problems when it does not load. */
export function compile(yaml: string, opts: MappingOptions = options): Mapping {
  const { mapping, problems } = parseMapping(yaml, 'test.yml', opts);
  if (!mapping) throw new Error(`mapping did not load: ${JSON.stringify(problems)}`);
  return mapping;
}

/** The problems of mapping text named `test.yml`. */
export function problemsOf(yaml: string, opts: MappingOptions = options): ConfigProblem[] {
  return parseMapping(yaml, 'test.yml', opts).problems;
}

/** Maps one identity with a mapping given as text. */
export async function mapWith(yaml: string, partial: Partial<Identity> = {}): Promise<MappingResult> {
  return compile(yaml).map(identity(partial));
}

/** The desired user of a result, or a thrown error naming what it was instead. */
export function userOf(result: MappingResult): DesiredUser {
  if (result.kind !== 'user') throw new Error(`expected a user, got ${result.kind}: ${JSON.stringify(result)}`);
  return result.user;
}

/** The issues of an invalid result (empty for anything else). */
export function issuesOf(result: MappingResult) {
  return result.kind === 'invalid' ? result.issues : [];
}

/** Minimal mapping header: a first name, plus whatever follows. */
export const BASE = 'fields:\n  firstName: FirstName\n';
