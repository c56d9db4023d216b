import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Ajv, ValidateFunction } from 'ajv';
import type { Ajv2020 } from 'ajv/dist/2020.js';

/**
 * A JSON Schema validator pbxsync ships, and how to build it: compiled by ajv at run time, or precompiled to
 * a module by `npm run build` (ajv's standalone code). WARNING: compiling the two schemas cost ~0.18 s of
 * every start (every CLI command, every import); the precompiled modules load in milliseconds.
 */
export interface ValidatorSpec {
  /** File name (without `.cjs`) of the precompiled module in dist/validators/. */
  name: string;
  schema: () => object;
  /** The ajv options the schema is compiled with (besides `code`). */
  options: Readonly<Record<string, boolean>>;
  /** ajv-formats formats the schema uses. */
  formats: readonly string[];
  /**
   * A new ajv instance with {@link options} and {@link formats}. ajv is loaded here, on first use: with the
   * precompiled modules a start never needs it.
   */
  ajv: (code?: { source: true }) => Ajv | Ajv2020;
}

/** Folder of the precompiled validators: dist/validators, two levels above this module once built. */
export const VALIDATORS_DIR = fileURLToPath(new URL('../../validators/', import.meta.url));

const load = createRequire(import.meta.url);

/**
 * Identifies what a validator was built from: the schema, the ajv options and formats, and the versions of ajv
 * and ajv-formats. A precompiled module with another fingerprint is stale (a schema edited after the build, a
 * dependency updated) and not used.
 */
export function validatorFingerprint(spec: ValidatorSpec): string {
  const { version } = load('ajv/package.json') as { version: string };
  const { version: formatsVersion } = load('ajv-formats/package.json') as { version: string };
  const built = { schema: spec.schema(), options: spec.options, formats: spec.formats, version, formatsVersion };
  return createHash('sha256').update(JSON.stringify(built)).digest('hex');
}

/**
 * The spec's validator: the precompiled module when it exists and was built from this schema, else compiled
 * now. `dir` is where precompiled modules are looked for (tests point it elsewhere).
 */
export function loadValidator(spec: ValidatorSpec, dir = VALIDATORS_DIR): ValidateFunction {
  const file = path.join(dir, `${spec.name}.cjs`);
  if (existsSync(file)) {
    const mod = load(file) as ValidateFunction & { fingerprint?: string };
    if (mod.fingerprint === validatorFingerprint(spec)) return mod;
  }
  return spec.ajv().compile(spec.schema());
}
