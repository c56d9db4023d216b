import test from 'ava';
import { copyFile, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, validateConfig } from '../../src/config/load.js';
import { DEFAULTS } from '../../src/config/normalise.js';
import { serviceSchema } from '../../src/config/schema.js';
import { ConfigError, type ConfigProblem } from '../../src/errors/index.js';
import { fixture, MINIMAL_SOURCE, serviceFile, STUB_MAPPING, yaml } from './_fixture.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');


/**
 * The loaded config of a one-CSV-source file with every other value defaulted (the shipped service.yml spells
 * the same values out, except its sender address), paths absolute beside `file`.
 */
function defaultedConfig(o: { file: string; source: string; mapping: string; from: string }): unknown {
  const dir = path.dirname(o.file);
  return {
    file: o.file,
    stateDir: path.join(dir, 'data'),
    target: { type: 'embedded', storeFile: path.join(dir, 'data', 'pbx.json') },
    sources: [
      {
        name: o.source,
        type: 'csv',
        mapping: path.join(dir, 'mappings', o.mapping),
        settings: {},
        csv: {
          folder: path.join(dir, 'inbox'),
          processed: path.join(dir, 'inbox', 'processed'),
          failed: path.join(dir, 'inbox', 'failed'),
          mode: 'upsert',
          keyColumn: 'auto',
          delimiter: 'auto',
          encoding: 'auto',
          report: 'json',
          stableMs: 2000,
          extensions: ['.csv', '.txt'],
        },
      },
    ],
    schedule: { poll: '*/5 * * * *', full: '30 2 * * *' },
    safety: { maxDeletes: 10, maxDeletePercent: 10, maxDisables: 25, maxDisablePercent: 20, minSourceRatio: 0.9, keepPlansDays: 30, removal: { action: 'disable', graceDays: 30 } },
    numbering: { ranges: [{ from: '1000', to: '1999' }], reserved: [], emergency: ['911', '112', '15', '17', '18', '999'] },
    mail: { welcome: true, alertsTo: [], from: o.from, outbox: path.join(dir, 'data', 'outbox') },
    provisioning: { listen: '127.0.0.1:8089', publicUrl: 'http://127.0.0.1:8089' },
    status: { listen: '127.0.0.1:9464' },
    apply: { concurrency: 8, retries: 4, checkpointEvery: 1000 },
    logging: { level: 'info' },
  };
}

test('the shipped service.yml loads as is, with no environment variables', async (t) => {
  const config = await loadConfig(path.join(repo, 'service.yml'), { env: {} });
  t.is(config.target.type, 'embedded');
  t.deepEqual(
    config.sources.map((s) => s.name),
    ['inbox'],
  );
});

test('the shipped service.yml normalises to absolute paths and its own values', async (t) => {
  // A copy beside a stub mapping: checks the config itself whatever state mappings/ is in.
  const dir = await fixture({ 'mappings/3cx-csv.yml': STUB_MAPPING });
  await copyFile(path.join(repo, 'service.yml'), path.join(dir, 'service.yml'));
  const warnings: ConfigProblem[] = [];
  const config = await loadConfig(path.join(dir, 'service.yml'), { env: {}, onWarning: (w) => warnings.push(w) });
  t.deepEqual(warnings, []);
  t.deepEqual(
    JSON.parse(JSON.stringify(config)),
    defaultedConfig({ file: path.join(dir, 'service.yml'), source: 'inbox', mapping: '3cx-csv.yml', from: 'pbx@example.com' }),
  );
});

test('every default of a minimal file', async (t) => {
  const file = await serviceFile(MINIMAL_SOURCE);
  const config = await loadConfig(file, { env: {} });
  t.deepEqual(JSON.parse(JSON.stringify(config)), defaultedConfig({ file, source: 'hr', mapping: 'test.yml', from: 'pbxsync@localhost' }));
});

test('3cx target defaults, relative caFile and a trailing slash removed', async (t) => {
  const file = await serviceFile(
    yaml`
      target:
        type: 3cx
        url: https://pbx.example.com:5001/
        clientId: pbxsync
        clientSecret: \${SECRET}
        caFile: certs/ca.pem
    ` + MINIMAL_SOURCE,
    { 'certs/ca.pem': '-----BEGIN CERTIFICATE-----\n' },
  );
  const config = await loadConfig(file, { env: { SECRET: 'client-secret-value' } });
  t.like(config.target, {
    type: '3cx',
    url: 'https://pbx.example.com:5001',
    clientId: 'pbxsync',
    caFile: path.join(path.dirname(file), 'certs', 'ca.pem'),
    concurrency: 4,
    writesPerSecond: 10,
    pageSize: 100,
    timeoutMs: 30000,
  });
  t.is(config.target.type === '3cx' ? config.target.clientSecret.reveal() : undefined, 'client-secret-value');
});

test('arrays given in the file replace the defaults instead of merging', async (t) => {
  const file = await serviceFile(
    MINIMAL_SOURCE.replace('folder: inbox', 'folder: inbox\n      extensions: [".CSV"]') +
      yaml`
        numbering:
          ranges: [{ from: "200", to: "299" }]
          emergency: ["110"]
      `,
  );
  const config = await loadConfig(file, { env: {} });
  t.deepEqual(config.numbering, { ranges: [{ from: '200', to: '299' }], reserved: [], emergency: ['110'] });
  t.deepEqual(config.sources[0]!.csv!.extensions, ['.csv']);
});

test('explicit paths are resolved against the config folder, absolute ones kept', async (t) => {
  const file = await serviceFile(
    yaml`
      stateDir: /var/lib/pbxsync
      target: { type: embedded, storeFile: store/pbx.json }
      mail: { outbox: mail/out }
      logging: { file: logs/pbxsync.log, level: debug }
      provisioning: { listen: "0.0.0.0:8089", publicUrl: "http://pbx.example.com:8089/" }
    ` + MINIMAL_SOURCE.replace('folder: inbox', 'folder: /srv/drop\n      failed: bad'),
  );
  const dir = path.dirname(file);
  const config = await loadConfig(file, { env: {} });
  t.is(config.stateDir, '/var/lib/pbxsync');
  t.deepEqual(config.target, { type: 'embedded', storeFile: path.join(dir, 'store', 'pbx.json') });
  t.is(config.mail.outbox, path.join(dir, 'mail', 'out'));
  t.deepEqual(config.logging, { level: 'debug', file: path.join(dir, 'logs', 'pbxsync.log') });
  t.deepEqual(config.provisioning, { listen: '0.0.0.0:8089', publicUrl: 'http://pbx.example.com:8089' });
  t.like(config.sources[0]!.csv, { folder: '/srv/drop', processed: '/srv/drop/processed', failed: path.join(dir, 'bad') });
});

test('non-csv sources keep their free settings and their own schedule', async (t) => {
  const file = await serviceFile(yaml`
    sources:
      - name: entra
        type: m365
        mapping: mappings/test.yml
        schedule: "*/15 * * * *"
        settings: { tenantId: abc, nested: { a: 1 } }
  `);
  const config = await loadConfig(file, { env: {} });
  t.deepEqual(
    { ...config.sources[0] },
    { name: 'entra', type: 'm365', mapping: path.join(path.dirname(file), 'mappings', 'test.yml'), schedule: '*/15 * * * *', settings: { tenantId: 'abc', nested: { a: 1 } } },
  );
});

/** Reads `#/definitions/...`-style paths of the schema. */
function schemaAt(pointer: string): Record<string, unknown> {
  let node: unknown = serviceSchema;
  for (const seg of pointer.split('/')) node = (node as Record<string, unknown>)[seg];
  return node as Record<string, unknown>;
}

const schemaDefaults: Array<[string, unknown]> = [
  ['properties/stateDir', DEFAULTS.stateDir],
  ['definitions/target/oneOf/1/properties/concurrency', DEFAULTS.threeCx.concurrency],
  ['definitions/target/oneOf/1/properties/writesPerSecond', DEFAULTS.threeCx.writesPerSecond],
  ['definitions/target/oneOf/1/properties/pageSize', DEFAULTS.threeCx.pageSize],
  ['definitions/target/oneOf/1/properties/timeoutMs', DEFAULTS.threeCx.timeoutMs],
  ['definitions/csv/properties/mode', DEFAULTS.csv.mode],
  ['definitions/csv/properties/keyColumn', DEFAULTS.csv.keyColumn],
  ['definitions/csv/properties/delimiter', DEFAULTS.csv.delimiter],
  ['definitions/csv/properties/encoding', DEFAULTS.csv.encoding],
  ['definitions/csv/properties/report', DEFAULTS.csv.report],
  ['definitions/csv/properties/stableMs', DEFAULTS.csv.stableMs],
  ['definitions/csv/properties/extensions', DEFAULTS.csv.extensions],
  ['definitions/schedule/properties/poll', DEFAULTS.schedule.poll],
  ['definitions/schedule/properties/full', DEFAULTS.schedule.full],
  ['definitions/safety/properties/maxDeletes', DEFAULTS.safety.maxDeletes],
  ['definitions/safety/properties/maxDeletePercent', DEFAULTS.safety.maxDeletePercent],
  ['definitions/safety/properties/maxDisables', DEFAULTS.safety.maxDisables],
  ['definitions/safety/properties/maxDisablePercent', DEFAULTS.safety.maxDisablePercent],
  ['definitions/safety/properties/minSourceRatio', DEFAULTS.safety.minSourceRatio],
  ['definitions/safety/properties/keepPlansDays', DEFAULTS.safety.keepPlansDays],
  ['definitions/safety/properties/removal/properties/action', DEFAULTS.safety.removal.action],
  ['definitions/safety/properties/removal/properties/graceDays', DEFAULTS.safety.removal.graceDays],
  ['definitions/numbering/properties/ranges', DEFAULTS.numbering.ranges],
  ['definitions/numbering/properties/reserved', DEFAULTS.numbering.reserved],
  ['definitions/numbering/properties/emergency', DEFAULTS.numbering.emergency],
  ['definitions/mail/properties/welcome', DEFAULTS.mail.welcome],
  ['definitions/mail/properties/alertsTo', DEFAULTS.mail.alertsTo],
  ['definitions/mail/properties/from', DEFAULTS.mail.from],
  ['definitions/provisioning/properties/listen', DEFAULTS.provisioning.listen],
  ['definitions/status/properties/listen', DEFAULTS.status.listen],
  ['definitions/apply/properties/concurrency', DEFAULTS.apply.concurrency],
  ['definitions/apply/properties/retries', DEFAULTS.apply.retries],
  ['definitions/apply/properties/checkpointEvery', DEFAULTS.apply.checkpointEvery],
  ['definitions/logging/properties/level', DEFAULTS.logging.level],
];

for (const [pointer, expected] of schemaDefaults) {
  test(`schema default of ${pointer} matches the loader`, (t) => {
    t.deepEqual(schemaAt(pointer).default, expected);
  });
}

test('every schema property has a description', (t) => {
  const missing: string[] = [];
  const walk = (node: unknown, where: string): void => {
    if (Array.isArray(node)) return node.forEach((n, i) => walk(n, `${where}/${i}`));
    if (!node || typeof node !== 'object') return;
    const o = node as Record<string, unknown>;
    if (o.properties && typeof o.properties === 'object') {
      for (const [key, prop] of Object.entries(o.properties as Record<string, Record<string, unknown>>)) {
        const described = typeof prop.description === 'string' || (typeof prop.$ref === 'string' && typeof schemaAt(prop.$ref.slice(2)).description === 'string');
        if (!described) missing.push(`${where}/properties/${key}`);
      }
    }
    for (const [k, v] of Object.entries(o)) walk(v, `${where}/${k}`);
  };
  walk(serviceSchema, '#');
  t.deepEqual(missing, []);
});

test('the schema file on disk is the one the loader uses', async (t) => {
  t.deepEqual(JSON.parse(await readFile(path.join(repo, 'config', 'service.schema.json'), 'utf8')), serviceSchema);
});

test('validateConfig reports an unreadable file as a problem', async (t) => {
  const dir = await fixture({});
  const result = await validateConfig(path.join(dir, 'missing.yml'), { env: {} });
  t.is(result.config, undefined);
  t.is(result.problems.length, 1);
  t.regex(result.problems[0]!.message, /cannot read the configuration file \(ENOENT\)/);
});

test('loadConfig throws a ConfigError whose message lists the problems', async (t) => {
  const file = await serviceFile('stateDir: 42\n' + MINIMAL_SOURCE);
  const err = await t.throwsAsync(loadConfig(file, { env: {} }), { instanceOf: ConfigError });
  t.is(err!.problems.length, 1);
  t.regex(err!.message, /1 problem in the configuration/);
  t.true(err!.message.includes(`${file}:1:11: stateDir: must be a string`));
});
