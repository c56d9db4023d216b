import type { RoleName } from '../model/index.js';
import type { AdoptionMatch, NumberRange, RemovalPolicy } from './types.js';

/*
 * The shape of a mapping file after YAML parsing and schema validation (config/mapping.schema.json is the
 * authority and carries the documentation; these types mirror it for the compiler).
 */

/** A scalar YAML value a mapping may use as a constant. */
export type Constant = string | number | boolean | null;

/** Where a value comes from: exactly one of `from`, `expr`, `value`. A bare string is `{ from: <string> }`. */
export type SourceSpec =
  | string
  | {
      from?: string;
      expr?: string;
      value?: Constant;
      /** Used when the source value is empty. */
      default?: Constant;
    };

/** A boolean source; a bare boolean is `{ value: <boolean> }`. */
export type FlagSpec =
  | string
  | boolean
  | { from?: string; expr?: string; value?: boolean; default?: boolean | null; negate?: boolean };

/** A test on one identity; every test present must hold. */
export interface ConditionSpec {
  attribute?: string;
  equals?: string | number | boolean;
  oneOf?: Array<string | number | boolean>;
  regex?: string;
  present?: boolean;
  group?: string | string[];
  ou?: string | string[];
  expr?: string;
  caseSensitive?: boolean;
}

export interface ScopeSpec {
  include?: ConditionSpec[];
  exclude?: ConditionSpec[];
}

export interface FieldsSpec {
  firstName: SourceSpec;
  lastName?: SourceSpec;
  displayName?: SourceSpec;
  email?: SourceSpec;
  mobile?: SourceSpec;
  outboundCallerId?: SourceSpec;
  language?: SourceSpec;
}

export type ExtensionTransform = 'none' | 'digits' | { lastDigits: number };

export interface ExtensionSpec {
  from?: string;
  expr?: string;
  transform?: ExtensionTransform;
  ifMissing?: 'allocate' | 'invalid';
  ranges?: NumberRange[];
  departmentRanges?: Record<string, NumberRange[]>;
}

export interface DepartmentSpec {
  from?: string;
  fromGroups?: boolean;
  fromOu?: boolean;
  expr?: string;
  value?: string;
  table?: Record<string, string>;
  default?: string;
  create?: boolean;
  extra?: 'none' | 'mappedGroups';
}

export type RoleRuleSpec = ConditionSpec & { role?: RoleName; from?: string };

export interface RoleSpec {
  rules?: RoleRuleSpec[];
  default?: RoleName;
  maxRole: RoleName;
}

export interface DidsSpec {
  from?: string | string[];
  expr?: string;
}

export interface VoicemailSpec {
  enabled?: FlagSpec;
  pin?: SourceSpec;
}

export interface PhoneSpecSpec {
  mac: SourceSpec;
  model?: SourceSpec;
  template?: SourceSpec;
}

/** A whole mapping file. */
export interface MappingSpec {
  $schema?: string;
  description?: string;
  defaultRegion?: string;
  scope?: ScopeSpec;
  fields: FieldsSpec;
  extension?: ExtensionSpec;
  department?: DepartmentSpec;
  role?: RoleSpec;
  dids?: DidsSpec | string;
  voicemail?: VoicemailSpec;
  require2fa?: FlagSpec;
  hideInPhonebook?: FlagSpec;
  recordCalls?: FlagSpec;
  enabled?: FlagSpec;
  phones?: PhoneSpecSpec[];
  options?: string[];
  removal?: Partial<RemovalPolicy>;
  adopt?: AdoptionMatch[];
  welcome?: boolean;
}
