import { createRequire } from 'node:module';
import type { ErrorObject, ValidateFunction } from 'ajv';
import type { FormatsPlugin } from 'ajv-formats';
import type { FormatName } from 'ajv-formats/dist/formats.js';
import schema from '../../config/service.schema.json' with { type: 'json' };
import type { ConfigProblem } from '../errors/index.js';
import { formatPath, pointerToPath, type LocatedDocument, type PathSegment } from './document.js';
import { loadValidator, type ValidatorSpec } from './validators.js';

/** The JSON Schema of service.yml (config/service.schema.json). */
export const serviceSchema: Record<string, unknown> = schema;

const load = createRequire(import.meta.url);

/** The service.yml validator (see loadValidator: precompiled by the build, else compiled on first use). */
export const SERVICE_VALIDATOR: ValidatorSpec = {
  name: 'service',
  schema: () => serviceSchema,
  // allErrors: the operator gets every problem in one pass; verbose: parentSchema for "did you mean".
  options: { allErrors: true, verbose: true, discriminator: true, allowUnionTypes: true, strict: true },
  formats: ['email', 'uri'],
  ajv(code) {
    const { Ajv } = load('ajv') as typeof import('ajv');
    // CommonJS: `module.exports` is the plugin.
    const addFormats = load('ajv-formats') as FormatsPlugin;
    const ajv = new Ajv({ ...this.options, code });
    addFormats(ajv, [...this.formats] as FormatName[]);
    return ajv;
  },
};

let compiled: ValidateFunction | undefined;

function validator(): ValidateFunction {
  compiled ??= loadValidator(SERVICE_VALIDATOR);
  return compiled;
}

/** Friendlier messages for pattern failures, keyed by the schema definition that failed. */
const PATTERN_MESSAGES: Array<[string, string]> = [
  ['#/definitions/listen/', 'must be host:port, e.g. 127.0.0.1:9464 or [::1]:9464'],
  ['#/definitions/digits/', 'must be digits only, written as a string ("1000")'],
  ['/name/pattern', 'must start with a letter or digit and hold only letters, digits, ".", "_" and "-" (at most 64)'],
  ['/extensions/items/pattern', 'must be a file name extension such as ".csv"'],
  ['/publicUrl/pattern', 'must be an http:// or https:// URL'],
];

function article(type: string): string {
  if (type === 'integer' || type === 'object' || type === 'array') return `an ${type}`;
  if (type === 'null') return 'null';
  return `a ${type}`;
}

function closest(word: string, candidates: string[]): string | undefined {
  const distance = (a: string, b: string): number => {
    const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
    for (let j = 1; j <= b.length; j++) d[0]![j] = j;
    for (let i = 1; i <= a.length; i++)
      for (let j = 1; j <= b.length; j++)
        d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    return d[a.length]![b.length]!;
  };
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const dist = distance(word.toLowerCase(), c.toLowerCase());
    if (dist < bestD) [best, bestD] = [c, dist];
  }
  return bestD <= Math.max(1, Math.floor(word.length / 3)) ? best : undefined;
}

/** Turns one ajv error into a path, a message and whether it points at a key. Never quotes the data. */
function describe(e: ErrorObject): { path: PathSegment[]; message: string; key?: boolean } {
  const path = pointerToPath(e.instancePath);
  const params = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = String(params.additionalProperty);
      const known = Object.keys((e.parentSchema as { properties?: object } | undefined)?.properties ?? {});
      const hint = closest(key, known);
      return { path: [...path, key], key: true, message: `unknown key "${key}"${hint ? ` (did you mean "${hint}"?)` : ''}` };
    }
    case 'required':
      return { path: [...path, String(params.missingProperty)], message: 'is required' };
    case 'type': {
      const types = String(params.type).split(',');
      if (types.includes('string') && types.includes('object') && e.schemaPath.startsWith('#/definitions/secretRef'))
        return { path, message: 'must be a secret reference: "${ENV_NAME}" or { file: path }' };
      return { path, message: `must be ${types.map(article).join(' or ')}` };
    }
    case 'enum':
      return { path, message: `must be one of: ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}` };
    case 'discriminator': {
      const tag = String(params.tag);
      if (params.error === 'tag') return { path: [...path, tag], message: 'is required and must be a string' };
      const options = ((e.parentSchema as { oneOf?: Array<{ properties: Record<string, { const: string }> }> }).oneOf ?? [])
        .map((b) => JSON.stringify(b.properties[tag]?.const))
        .join(', ');
      return { path: [...path, tag], message: `must be one of: ${options}` };
    }
    case 'pattern': {
      const found = PATTERN_MESSAGES.find(([where]) => e.schemaPath.includes(where));
      return { path, message: found ? found[1] : `must match ${String(params.pattern)}` };
    }
    case 'format':
      return { path, message: params.format === 'email' ? 'must be an e-mail address' : `must be a valid ${String(params.format)}` };
    case 'minLength':
      return { path, message: params.limit === 1 ? 'must not be empty' : `must have at least ${String(params.limit)} characters` };
    default:
      return { path, message: e.message ?? `fails ${e.keyword}` };
  }
}

/** Validates plain data against the schema and locates each problem in the YAML document. */
export function schemaProblems(data: unknown, document: LocatedDocument): ConfigProblem[] {
  const validate = validator();
  if (validate(data)) return [];
  const seen = new Set<string>();
  const problems: ConfigProblem[] = [];
  for (const e of validate.errors ?? []) {
    // oneOf summaries add nothing once the branch errors (or the discriminator error) are reported.
    if (e.keyword === 'oneOf' || e.keyword === 'if') continue;
    const { path, message, key } = describe(e);
    const id = `${formatPath(path)}\0${message}`;
    if (seen.has(id)) continue;
    seen.add(id);
    problems.push({ file: document.file, ...document.locate(path, { key }), path: formatPath(path), message });
  }
  return problems;
}
