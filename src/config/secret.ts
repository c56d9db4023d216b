import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { inspect } from 'node:util';
import { registerSecret } from '../log.js';
import type { SecretValue } from './types.js';

const REDACTED = '[redacted]';

/**
 * A resolved secret. The value sits in a private field and is only reachable through `reveal()`: every
 * accidental path to text (string templates, JSON.stringify, util.inspect, winston's formatters) prints
 * `[redacted]`, so a secret that ends up in a log line, a plan or the status page shows nothing.
 */
export class Secret implements SecretValue {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  /** The secret itself. Call this only where the value is handed to the system that needs it. */
  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return REDACTED;
  }

  [Symbol.toPrimitive](): string {
    return REDACTED;
  }
}

/** A secret reference as written in service.yml: `"${ENV}"`, `"prefix${ENV}suffix"`, a literal, or `{ file }`. */
export type SecretRef = string | { file: string };

/** Outcome of resolving one secret reference. Messages name variables and files, never values. */
export interface SecretResolution {
  secret?: Secret;
  /** Why it could not be resolved (the reference stays unresolved). */
  problem?: string;
  /** Resolved, but in a way that deserves attention (an inline literal). */
  warning?: string;
}

/** Options of resolveSecretRef. */
export interface ResolveSecretOptions {
  /** Environment to read `${NAME}` from; default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Folder that relative `{ file }` paths are resolved against (the config file's folder). */
  baseDir: string;
  /** Dotted path of the reference in its document, used in the inline-secret warning. */
  path: string;
  /**
   * The reference is a URL (`mail.smtpUrl`): the value of a variable substituted into its user-info
   * (`scheme://user:password@`) is percent-encoded, so that a password holding `#`, `/`, `@`, `:`, `%` or a
   * space is taken as it is instead of ending the user-info early. A variable (or file) holding the whole
   * URL is used as it is: its user-info must be encoded already.
   */
  url?: boolean;
}

const ENV_REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/**
 * Resolves a secret reference and registers the result (and, for embedded references, each substituted
 * variable) with the log redactor. Exported so later connectors can resolve secrets in their `settings`
 * the same way service.yml does.
 */
export async function resolveSecretRef(ref: SecretRef, options: ResolveSecretOptions): Promise<SecretResolution> {
  if (typeof ref === 'object') {
    const file = path.resolve(options.baseDir, ref.file);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
      return { problem: `cannot read secret file ${file} (${code})` };
    }
    const value = text.trim();
    if (value === '') return { problem: `secret file ${file} is empty` };
    registerSecret(value);
    return { secret: new Secret(value) };
  }

  const env = options.env ?? process.env;
  const names = [...ref.matchAll(ENV_REF)].map((m) => m[1]!);
  if (names.length === 0) {
    registerSecret(ref);
    return {
      secret: new Secret(ref),
      warning: `inline secret at ${options.path}; use \${ENV} or a file`,
    };
  }
  const unset = [...new Set(names.filter((n) => env[n] === undefined))];
  const empty = [...new Set(names.filter((n) => env[n] === ''))];
  if (unset.length > 0 || empty.length > 0) {
    const variables = (list: string[], state: string) =>
      `environment variable${list.length > 1 ? 's' : ''} ${list.join(', ')} ${list.length > 1 ? 'are' : 'is'} ${state}`;
    const problems = [...(unset.length > 0 ? [variables(unset, 'not set')] : []), ...(empty.length > 0 ? [variables(empty, 'empty')] : [])];
    return { problem: problems.join('; ') };
  }
  const userInfo = options.url ? userInfoSpan(ref) : undefined;
  const encoded = (offset: number) => userInfo !== undefined && offset >= userInfo.start && offset < userInfo.end;
  const value = ref.replace(ENV_REF, (_m, n: string, offset: number) => (encoded(offset) ? encodeURIComponent(env[n]!) : env[n]!));
  // The whole value first (the redactor masks in registration order), then each substituted part, raw and
  // as it stands in the URL: a client library may log the password without the rest of the URL, and a
  // message may quote the URL with the password encoded.
  registerSecret(value);
  for (const n of names) {
    registerSecret(env[n]);
    registerSecret(encodeURIComponent(env[n]!));
  }
  return { secret: new Secret(value) };
}

/**
 * Where the user-info of a URL template lies: from after `scheme://` to its last `@` before the first `/`,
 * `?` or `#`. Read on the template, before substitution, so a value cannot move the bounds (`${NAME}`
 * holds none of these characters). Undefined when the template has no user-info.
 */
function userInfoSpan(template: string): { start: number; end: number } | undefined {
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.exec(template);
  if (!scheme) return undefined;
  const start = scheme[0].length;
  const rest = template.slice(start).search(/[/?#]/);
  const authorityEnd = rest === -1 ? template.length : start + rest;
  const end = template.lastIndexOf('@', authorityEnd - 1);
  return end >= start ? { start, end } : undefined;
}
