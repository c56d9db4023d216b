/**
 * Build step (`npm run build`, after tsc): writes the shipped JSON Schema validators as ajv standalone code
 * to dist/validators/<name>.cjs, each with the fingerprint loadValidator checks. Run as a script:
 * `node dist/src/build/validators.js`.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import standaloneModule from 'ajv/dist/standalone/index.js';
import { SERVICE_VALIDATOR } from '../config/schema.js';
import { VALIDATORS_DIR, validatorFingerprint, type ValidatorSpec } from '../config/validators.js';
import { MAPPING_VALIDATOR } from '../mapping/load.js';

/** The validators pbxsync ships precompiled. */
export const SHIPPED_VALIDATORS: readonly ValidatorSpec[] = [SERVICE_VALIDATOR, MAPPING_VALIDATOR];

// ajv is CommonJS: under NodeNext the default import is `module.exports`, whose `.default` is the function.
const standaloneCode = standaloneModule.default;

/** The CommonJS module text of one validator (its default export, plus `fingerprint`). */
export function validatorModule(spec: ValidatorSpec): string {
  const ajv = spec.ajv({ source: true });
  const validate = ajv.compile(spec.schema());
  return `${standaloneCode(ajv, validate)}\nmodule.exports.fingerprint = ${JSON.stringify(validatorFingerprint(spec))};\n`;
}

/** Writes every shipped validator into `dir` (each through a temp file, so a reader never sees half). */
export async function writeValidators(dir: string = VALIDATORS_DIR): Promise<string[]> {
  await fs.mkdir(dir, { recursive: true });
  const written: string[] = [];
  for (const spec of SHIPPED_VALIDATORS) {
    const file = path.join(dir, `${spec.name}.cjs`);
    await fs.writeFile(`${file}.tmp`, validatorModule(spec));
    await fs.rename(`${file}.tmp`, file);
    written.push(file);
  }
  return written;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const files = await writeValidators();
  process.stdout.write(`precompiled ${files.map((f) => path.relative(process.cwd(), f)).join(', ')}\n`);
}
