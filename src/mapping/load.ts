import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { project } from '../util/project.js';
import type { ErrorObject, ValidateFunction } from 'ajv/dist/2020.js';
import { jsonata } from './expressions.js';
import { LineCounter, parseDocument, type Document } from 'yaml';
import { ConfigError, formatProblem, type ConfigProblem } from '../errors/index.js';
import type { NumberingPolicy } from '../reconcile/types.js';
import { loadValidator, type ValidatorSpec } from '../config/validators.js';
import { compileMapping } from './compile.js';
import { createContext } from './context.js';
import { formatPath, locate, locateInScalar, pointerToPath, type DocPath } from './locate.js';
import type { MappingSpec } from './spec.js';
import type { Mapping, RemovalPolicy } from './types.js';

/** What a mapping needs from service.yml. */
export interface MappingOptions {
  /** Global numbering: allocation ranges, reserved ranges, emergency numbers. */
  numbering: NumberingPolicy;
  /** The removal policy the mapping's `removal` overrides. */
  removal: RemovalPolicy;
}

/**
 * Loads a mapping file: parses the YAML, checks it against config/mapping.schema.json, compiles rules and
 * JSONata expressions. Throws a ConfigError listing every problem (file, line, column, path) when the file
 * is not usable.
 */
export async function loadMapping(file: string, options: MappingOptions): Promise<Mapping> {
  return usableMapping(file, await readMapping(file, options));
}

/**
 * {@link loadMapping} of a mapping whose text was read already (`file` names it in problems and rules).
 * @throws ConfigError listing every problem.
 */
export function loadMappingText(source: string, file: string, options: MappingOptions): Mapping {
  return usableMapping(file, parseMapping(source, file, options));
}

/** The hash a mapping compiled from this text carries as its `sourceHash`. */
export function mappingTextHash(source: string): string {
  return createHash('sha256').update(source).digest('hex');
}

function usableMapping(file: string, { mapping, problems }: { mapping?: Mapping; problems: ConfigProblem[] }): Mapping {
  if (problems.length > 0 || mapping === undefined) throw mappingError(file, problems);
  return mapping;
}

function mappingError(file: string, problems: ConfigProblem[]): ConfigError {
  const list = problems.map(formatProblem).join('\n  ');
  return new ConfigError(`mapping ${file} has ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n  ${list}`, problems);
}

/** Every problem of a mapping file (empty when it loads), for `pbxsync validate`. */
export async function validateMappingFile(file: string, options: MappingOptions): Promise<ConfigProblem[]> {
  return (await readMapping(file, options)).problems;
}

/** Parses and compiles a mapping given as text (`file` names it in problems and rules). */
export function parseMapping(source: string, file: string, options: MappingOptions): { mapping?: Mapping; problems: ConfigProblem[] } {
  const lines = new LineCounter();
  const doc = parseDocument(source, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const problems: ConfigProblem[] = [];
  for (const err of doc.errors) {
    const pos = lines.linePos(err.pos[0]);
    problems.push({ file, line: pos.line, column: pos.col, path: '', message: `YAML: ${err.message.split('\n')[0]}` });
  }
  if (doc.errors.length > 0) return { problems };

  const data: unknown = doc.toJS();
  const where = (p: DocPath, key = false) => locate(doc, lines, p, { key });
  const validate = schemaValidator();
  if (!validate(data)) {
    problems.push(...schemaProblems(validate.errors ?? [], file, where));
    // The rest of the file may be unusable, but expression and regex syntax errors are still worth listing.
    lintSyntax(data, [], (p, message, offset) => problems.push(problemAt(doc, lines, file, p, message, offset)));
    return { problems: sortProblems(dedupe(problems)) };
  }

  const ctx = createContext({
    file,
    ruleFile: displayName(file),
    numbering: options.numbering,
    problems,
    locate: (p) => where(p),
    locateIn: (p, offset) => locateInScalar(doc, lines, p, offset),
  });
  const mapping = compileMapping(data as MappingSpec, ctx, { removal: options.removal, sourceHash: mappingTextHash(source) });
  return problems.length > 0 ? { problems: sortProblems(dedupe(problems)) } : { mapping, problems };
}

async function readMapping(file: string, options: MappingOptions): Promise<{ mapping?: Mapping; problems: ConfigProblem[] }> {
  const read = await readMappingText(file);
  return read.text === undefined ? read : parseMapping(read.text, file, options);
}

async function readMappingText(file: string): Promise<{ text?: string; problems: ConfigProblem[] }> {
  try {
    return { text: await readFile(file, 'utf8'), problems: [] };
  } catch (err) {
    return { problems: [{ file, path: '', message: `cannot read the mapping file: ${(err as Error).message}` }] };
  }
}

/**
 * A mapping file kept compiled for a long-running process. {@link current} reads the file each time (a
 * mapping file is a few KB) and compiles it again only when its text changed, so an edit applies from the
 * next run without a restart.
 */
export class MappingFile {
  private compiled: Mapping | undefined;

  constructor(
    readonly file: string,
    private readonly options: MappingOptions,
  ) {}

  /**
   * The mapping as the file is now. `changed` is true when this call compiled a new version of a file
   * compiled before (not on the first compile).
   * @throws ConfigError when the file cannot be read or does not compile, listing every problem. The last
   * good version is not used instead: runs must not go on with rules the admin has just replaced.
   */
  async current(): Promise<{ mapping: Mapping; changed: boolean }> {
    const read = await readMappingText(this.file);
    if (read.text === undefined) throw mappingError(this.file, read.problems);
    const previous = this.compiled;
    if (previous && previous.sourceHash === mappingTextHash(read.text)) return { mapping: previous, changed: false };
    const mapping = loadMappingText(read.text, this.file, this.options);
    this.compiled = mapping;
    return { mapping, changed: previous !== undefined };
  }
}

/** Path of config/mapping.schema.json in the pbxsync installation. */
export function mappingSchemaPath(): string {
  return path.join(project().root, 'config', 'mapping.schema.json');
}

const load = createRequire(import.meta.url);

let mappingSchema: object | undefined;

/** The mapping-file validator (see loadValidator: precompiled by the build, else compiled on first use). */
export const MAPPING_VALIDATOR: ValidatorSpec = {
  name: 'mapping',
  // Read synchronously, once per process: the schema ships with the code.
  schema: () => (mappingSchema ??= JSON.parse(readFileSync(mappingSchemaPath(), 'utf8')) as object),
  options: { allErrors: true, allowUnionTypes: true, strict: true },
  formats: [],
  ajv(code) {
    const { Ajv2020 } = load('ajv/dist/2020.js') as typeof import('ajv/dist/2020.js');
    return new Ajv2020({ ...this.options, code });
  },
};

let validator: ValidateFunction | undefined;

function schemaValidator(): ValidateFunction {
  validator ??= loadValidator(MAPPING_VALIDATOR);
  return validator;
}

/** Turns ajv errors into ConfigProblems positioned on the YAML node of the failing path. */
function schemaProblems(
  errors: ErrorObject[],
  file: string,
  where: (p: DocPath, key?: boolean) => { line: number; column?: number } | undefined,
): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  // A failed `oneOf`/`anyOf`/`if` only repeats what its branches said.
  for (const e of errors.filter((x) => !['oneOf', 'anyOf', 'if'].includes(x.keyword))) {
    let p = [...pointerToPath(e.instancePath)];
    let key = false;
    let message = e.message ?? 'is invalid';
    if (e.keyword === 'additionalProperties') {
      const name = (e.params as { additionalProperty: string }).additionalProperty;
      p = [...p, name];
      key = true;
      message = `unknown property "${name}"`;
    } else if (e.keyword === 'required') {
      message = `missing required property "${(e.params as { missingProperty: string }).missingProperty}"`;
      // Point at the key of the incomplete object (`role:`), where the property belongs.
      key = true;
    } else if (e.keyword === 'enum') {
      message = `must be one of: ${((e.params as { allowedValues: unknown[] }).allowedValues ?? []).join(', ')}`;
    }
    const pos = where(p, key);
    out.push({ file, line: pos?.line, column: pos?.column, path: formatPath(p), message });
  }
  return out;
}

/** Reports JSONata and regex syntax errors anywhere in an (otherwise possibly invalid) document. */
function lintSyntax(node: unknown, p: DocPath, report: (p: DocPath, message: string, offset?: number) => void): void {
  if (Array.isArray(node)) node.forEach((item, i) => lintSyntax(item, [...p, i], report));
  else if (node && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) {
      const here = [...p, k];
      if (k === 'expr' && typeof v === 'string') {
        try {
          jsonata(v);
        } catch (err) {
          const e = err as { message?: string; position?: number };
          report(here, `JSONata syntax error: ${e.message ?? String(err)}`, e.position);
        }
      } else if (k === 'regex' && typeof v === 'string') {
        try {
          new RegExp(v);
        } catch (err) {
          report(here, `invalid regular expression: ${(err as Error).message}`);
        }
      } else lintSyntax(v, here, report);
    }
  }
}

function problemAt(doc: Document, lines: LineCounter, file: string, p: DocPath, message: string, offset?: number): ConfigProblem {
  const pos = offset === undefined ? locate(doc, lines, p) : locateInScalar(doc, lines, p, offset);
  return { file, line: pos?.line, column: pos?.column, path: formatPath(p), message };
}

function dedupe(problems: ConfigProblem[]): ConfigProblem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const k = `${p.path}\u0000${p.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

function sortProblems(problems: ConfigProblem[]): ConfigProblem[] {
  return [...problems].sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
}

/** `mappings/3cx-csv.yml` for a file under the working directory, the path as given otherwise. */
function displayName(file: string): string {
  const rel = path.relative(process.cwd(), path.resolve(file));
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel.split(path.sep).join('/') : file;
}
