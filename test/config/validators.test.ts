import test from 'ava';
import fs from 'node:fs/promises';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import type { ValidateFunction } from 'ajv';
import { parse } from 'yaml';
import { SHIPPED_VALIDATORS, writeValidators } from '../../src/build/validators.js';
import { SERVICE_VALIDATOR } from '../../src/config/schema.js';
import { loadValidator, validatorFingerprint, type ValidatorSpec } from '../../src/config/validators.js';
import { MAPPING_VALIDATOR } from '../../src/mapping/load.js';
import { ROOT } from '../helpers/workspace.js';

const execFileAsync = promisify(execFile);

/** A temp folder inside the project: the generated modules require ajv's runtime from its node_modules. */
async function tempDir(t: { teardown: (fn: () => Promise<void>) => void }): Promise<string> {
  await fs.mkdir(path.join(ROOT, 'dist'), { recursive: true });
  const dir = await fs.mkdtemp(path.join(ROOT, 'dist', 'validators-test-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

const yamlFile = async (file: string): Promise<unknown> => parse(await fs.readFile(path.join(ROOT, file), 'utf8'));

/** Documents each validator must judge the same way precompiled and compiled: the shipped ones and broken ones. */
const DOCUMENTS: Array<[ValidatorSpec, string, () => Promise<unknown>]> = [
  [SERVICE_VALIDATOR, 'the shipped service.yml', () => yamlFile('service.yml')],
  [SERVICE_VALIDATOR, 'an unknown key, a wrong type, a bad e-mail', async () => ({ ...((await yamlFile('service.yml')) as object), stateDir: 5, colour: 'red', mail: { welcome: true, from: 'not-an-address' } })],
  [SERVICE_VALIDATOR, 'not an object', async () => ['a list']],
  ...(['3cx-csv.yml', 'ad.yml', 'google.yml', 'm365.yml', 'openldap.yml'].map((f) => [MAPPING_VALIDATOR, `mappings/${f}`, () => yamlFile(`mappings/${f}`)]) as Array<[ValidatorSpec, string, () => Promise<unknown>]>),
  [MAPPING_VALIDATOR, 'a mapping with unknown and mistyped keys', async () => ({ ...((await yamlFile('mappings/3cx-csv.yml')) as object), version: 'one', extra: true })],
];

function verdict(validate: ValidateFunction, data: unknown): { valid: boolean; errors: unknown } {
  const valid = validate(data) as boolean;
  return { valid, errors: validate.errors?.map(({ instancePath, schemaPath, keyword, params, message, parentSchema }) => ({ instancePath, schemaPath, keyword, params, message, parentSchema })) ?? null };
}

test('a precompiled validator judges every document exactly as the validator compiled at run time', async (t) => {
  const dir = await tempDir(t);
  const files = await writeValidators(dir);
  t.deepEqual(files.map((f) => path.basename(f)), SHIPPED_VALIDATORS.map((s) => `${s.name}.cjs`));
  for (const [spec, what, document] of DOCUMENTS) {
    const precompiled = loadValidator(spec, dir);
    const compiled = spec.ajv().compile(spec.schema());
    t.not(precompiled, compiled);
    const data = await document();
    const expected = verdict(compiled, data);
    t.deepEqual(verdict(precompiled, data), expected, `${spec.name}: ${what}`);
    t.is(expected.valid, what.includes('shipped') || what.startsWith('mappings/'), `${spec.name}: ${what} is judged as intended`);
  }
});

test('loadValidator takes the precompiled module only when it was built from this schema and these options', async (t) => {
  const dir = await tempDir(t);
  const stand = (fingerprint: string) => `module.exports = function acceptsAnything() { return true; };\nmodule.exports.fingerprint = ${JSON.stringify(fingerprint)};\n`;
  const broken = { stateDir: 5 };

  await fs.writeFile(path.join(dir, 'service.cjs'), stand(validatorFingerprint(SERVICE_VALIDATOR)));
  t.is(loadValidator(SERVICE_VALIDATOR, dir).name, 'acceptsAnything', 'a current module is used as it is');

  const stale = await tempDir(t);
  await fs.writeFile(path.join(stale, 'service.cjs'), stand('0'.repeat(64)));
  const validate = loadValidator(SERVICE_VALIDATOR, stale);
  t.false(validate(broken), 'a stale module is ignored: the schema is compiled instead');

  const none = await tempDir(t);
  t.false(loadValidator(SERVICE_VALIDATOR, none)(broken), 'no module: compiled');
});

test('the fingerprint changes with the schema, the ajv options and the formats', (t) => {
  const base = validatorFingerprint(SERVICE_VALIDATOR);
  t.regex(base, /^[0-9a-f]{64}$/);
  t.is(validatorFingerprint(SERVICE_VALIDATOR), base);
  t.not(validatorFingerprint({ ...SERVICE_VALIDATOR, schema: () => ({ ...SERVICE_VALIDATOR.schema(), title: 'edited' }) }), base);
  t.not(validatorFingerprint({ ...SERVICE_VALIDATOR, options: { ...SERVICE_VALIDATOR.options, allErrors: false } }), base);
  t.not(validatorFingerprint({ ...SERVICE_VALIDATOR, formats: ['email'] }), base);
  t.not(validatorFingerprint(MAPPING_VALIDATOR), base);
});

test('the build wrote current precompiled validators into dist/validators', async (t) => {
  // `npm test` builds first; the CLI tests run this dist code.
  for (const spec of SHIPPED_VALIDATORS) {
    const text = await fs.readFile(path.join(ROOT, 'dist', 'validators', `${spec.name}.cjs`), 'utf8');
    t.true(text.includes(`module.exports.fingerprint = ${JSON.stringify(validatorFingerprint(spec))};`), spec.name);
  }
});

test('a start on the built code validates service.yml and a mapping without loading the ajv compiler', async (t) => {
  const script = `
    import { createRequire } from 'node:module';
    const { loadConfig } = await import(${JSON.stringify(path.join(ROOT, 'dist/src/config/load.js'))});
    const { loadMapping } = await import(${JSON.stringify(path.join(ROOT, 'dist/src/mapping/load.js'))});
    const config = await loadConfig(${JSON.stringify(path.join(ROOT, 'service.yml'))});
    await loadMapping(config.sources[0].mapping, { numbering: config.numbering, removal: { action: 'disable', graceDays: 30 } });
    const cache = Object.keys(createRequire(import.meta.url).cache);
    console.log(JSON.stringify(cache.filter((f) => f.includes('/ajv/') || f.includes('/ajv-formats/')).map((f) => f.split('node_modules/')[1])));
  `;
  const { stdout } = await execFileAsync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT });
  const loaded = JSON.parse(stdout) as string[];
  t.false(loaded.some((f) => f === 'ajv/dist/core.js' || f.startsWith('ajv/dist/compile/')), loaded.join(', '));
  t.true(loaded.length > 0, 'the precompiled validators load ajv runtime helpers only');
});
