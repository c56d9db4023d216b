import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError, formatProblem, type ConfigProblem } from '../errors/index.js';
import { registerSecret } from '../log.js';
import { formatPath, LocatedDocument, type PathSegment } from './document.js';
import { normalise, type RawServiceConfig, type ResolvedSecrets } from './normalise.js';
import { asObject, RULES, type RawObject } from './rules.js';
import { schemaProblems } from './schema.js';
import { resolveSecretRef, type SecretRef } from './secret.js';
import { parseSmtpUrl } from './smtp.js';
import type { SecretValue, ServiceConfig } from './types.js';

/** Options of loadConfig and validateConfig. */
export interface LoadConfigOptions {
  /** Environment for `${NAME}` secret references; default process.env. */
  env?: NodeJS.ProcessEnv;
  /** loadConfig only: called for each warning (inline secret, emergency number in a range, ...). */
  onWarning?: (warning: ConfigProblem) => void;
  /**
   * The secrets the caller uses; default all. The others are neither resolved nor checked, and stay unset
   * in the config: `pbxsync status` must work for an admin whose shell lacks the mail password, and a
   * one-shot command has no use for the status server's token.
   */
  secrets?: readonly SecretSlot[];
}

/** A secret of service.yml, by the name the loader resolves it under. */
export type SecretSlot = keyof ResolvedSecrets;

/** The outcome of validateConfig: a config only when there are no problems. */
export interface ConfigValidation {
  config?: ServiceConfig;
  problems: ConfigProblem[];
  warnings: ConfigProblem[];
}

/** A secret reference in service.yml: where it may appear and which resolved secret it becomes. */
interface SecretField {
  path: PathSegment[];
  slot: keyof ResolvedSecrets;
  applies: (raw: RawObject) => boolean;
  /** The reference is a URL whose user-info variables are percent-encoded (see ResolveSecretOptions.url). */
  url?: boolean;
  /** Checks the resolved value; returns a problem that never quotes the value. */
  check?: (value: string) => string | undefined;
}

/** Where secret references may appear, and which resolved secret each becomes. */
const SECRET_FIELDS: readonly SecretField[] = [
  { path: ['target', 'clientSecret'], slot: 'clientSecret', applies: (raw) => asObject(raw.target)?.type === '3cx' },
  { path: ['mail', 'smtpUrl'], slot: 'smtpUrl', applies: () => true, url: true, check: smtpUrlProblem },
  { path: ['status', 'token'], slot: 'statusToken', applies: () => true },
];

/**
 * Checks the resolved SMTP URL here, at load, so that `validate` reports a bad one and no run gets as far
 * as the mailer with it. Registers the decoded password with the redactor as well: the URL and each
 * variable are registered already, but a password written percent-encoded (in a whole-URL variable or a
 * file) reaches the SMTP client, and so its errors, decoded.
 */
function smtpUrlProblem(value: string): string | undefined {
  try {
    registerSecret(parseSmtpUrl(value).auth?.pass);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

function valueAt(raw: RawObject, p: PathSegment[]): unknown {
  let v: unknown = raw;
  for (const seg of p) v = asObject(v)?.[seg as string];
  return v;
}

function isSecretRef(v: unknown): v is SecretRef {
  if (typeof v === 'string') return v.length > 0;
  const o = asObject(v);
  return o !== undefined && typeof o.file === 'string' && o.file.length > 0 && Object.keys(o).length === 1;
}

function byPosition(a: ConfigProblem, b: ConfigProblem): number {
  return (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0);
}

/**
 * Reads and checks a service.yml: YAML syntax, the JSON Schema, secret references and the cross-field
 * rules, collecting every problem (with file, line, column and path) instead of stopping at the first.
 * Backs `pbxsync validate`; loadConfig is the throwing form.
 */
export async function validateConfig(file: string, options: LoadConfigOptions = {}): Promise<ConfigValidation> {
  const absFile = path.resolve(file);
  const baseDir = path.dirname(absFile);
  let text: string;
  try {
    text = await readFile(absFile, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    return { problems: [{ file: absFile, path: '', message: `cannot read the configuration file (${code})` }], warnings: [] };
  }

  const parsed = LocatedDocument.parse(absFile, text);
  const { document } = parsed;
  const warnings = [...parsed.warnings];
  // The shape is unknown after a syntax error; checking further would only add noise.
  if (parsed.problems.length > 0) return { problems: parsed.problems, warnings };

  const data = document.toJS() ?? {};
  const raw = asObject(data);
  if (!raw) {
    return { problems: [{ file: absFile, line: 1, column: 1, path: '', message: 'must be a mapping of settings (key: value)' }], warnings };
  }

  const problems = schemaProblems(raw, document);
  const at = (p: PathSegment[], message: string): ConfigProblem => ({ file: absFile, ...document.locate(p), path: formatPath(p), message });

  // Rules and secrets run even when the schema failed, so one pass reports everything.
  for (const [, rule] of RULES) {
    await rule({
      raw,
      baseDir,
      error: (p, message) => problems.push(at(p, message)),
      warn: (p, message) => warnings.push(at(p, message)),
    });
  }

  const secrets: ResolvedSecrets = {};
  for (const field of SECRET_FIELDS) {
    const ref = valueAt(raw, field.path);
    if (ref === undefined || !field.applies(raw) || !isSecretRef(ref)) continue;
    if (options.secrets && !options.secrets.includes(field.slot)) continue;
    const result = await resolveSecretRef(ref, { env: options.env, baseDir, path: formatPath(field.path), url: field.url });
    if (result.problem) problems.push(at(field.path, result.problem));
    if (result.warning) warnings.push(at(field.path, result.warning));
    const problem = result.secret ? field.check?.(result.secret.reveal()) : undefined;
    if (problem) problems.push(at(field.path, problem));
    else if (result.secret) secrets[field.slot] = result.secret as SecretValue;
  }

  problems.sort(byPosition);
  warnings.sort(byPosition);
  if (problems.length > 0) return { problems, warnings };
  return { config: normalise(raw as RawServiceConfig, absFile, secrets), problems, warnings };
}

/**
 * Loads service.yml into a ServiceConfig: validated, defaulted, paths absolute, secrets resolved (and
 * registered with the log redactor). Throws one ConfigError listing every problem.
 */
export async function loadConfig(file: string, options: LoadConfigOptions = {}): Promise<ServiceConfig> {
  const result = await validateConfig(file, options);
  for (const w of result.warnings) options.onWarning?.(w);
  if (!result.config) {
    const n = result.problems.length;
    const message = [`${path.resolve(file)}: ${n} problem${n === 1 ? '' : 's'} in the configuration`, ...result.problems.map((p) => `  ${formatProblem(p)}`)].join('\n');
    throw new ConfigError(message, result.problems);
  }
  return result.config;
}
