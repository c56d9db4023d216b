import test from 'ava';
import { loadConfig, validateConfig } from '../../src/config/load.js';
import { ConfigError, type ConfigProblem } from '../../src/errors/index.js';
import { MINIMAL_SOURCE, serviceFile, yaml } from './_fixture.js';

const source = (extra = '') => MINIMAL_SOURCE + extra;

interface Case {
  title: string;
  yaml: string;
  /** Expected problem: path, line, column (when checked) and a message pattern. */
  expect: { path: string; line: number; column?: number; message: RegExp };
  env?: NodeJS.ProcessEnv;
}

const cases: Case[] = [
  {
    title: 'wrong type',
    yaml: source() + 'safety:\n  maxDeletes: ten\n',
    expect: { path: 'safety.maxDeletes', line: 8, column: 15, message: /^must be an integer$/ },
  },
  {
    title: 'unknown top-level key with a suggestion',
    yaml: source() + 'schedul:\n  poll: "* * * * *"\n',
    expect: { path: 'schedul', line: 7, column: 1, message: /^unknown key "schedul" \(did you mean "schedule"\?\)$/ },
  },
  {
    title: 'unknown nested key',
    yaml: source('      watch: true\n'),
    expect: { path: 'sources[0].csv.watch', line: 7, column: 7, message: /^unknown key "watch"$/ },
  },
  {
    title: 'bad cron',
    yaml: source() + 'schedule:\n  poll: "61 * * * *"\n',
    expect: { path: 'schedule.poll', line: 8, column: 9, message: /^invalid cron expression "61 \* \* \* \*": 61 is a invalid expression for minute$/ },
  },
  {
    title: 'bad cron of a source',
    yaml: source().replace('type: csv', 'type: csv\n    schedule: every five minutes'),
    expect: { path: 'sources[0].schedule', line: 4, column: 15, message: /^invalid cron expression "every five minutes"/ },
  },
  {
    title: 'duplicate source name',
    yaml: source() + '  - name: hr\n    type: csv\n    mapping: mappings/test.yml\n    csv: { folder: other }\n',
    expect: { path: 'sources[1].name', line: 7, column: 11, message: /^duplicate source name "hr" \(first used by sources\[0\]\)$/ },
  },
  {
    title: 'missing mapping file',
    yaml: source().replace('mappings/test.yml', 'mappings/nope.yml'),
    expect: { path: 'sources[0].mapping', line: 4, column: 14, message: /^mapping file not found: .*mappings\/nope\.yml$/ },
  },
  {
    title: 'range from greater than to',
    yaml: source() + 'numbering:\n  ranges:\n    - { from: "2000", to: "1999" }\n',
    expect: { path: 'numbering.ranges[0]', line: 9, column: 7, message: /^from "2000" is greater than to "1999"$/ },
  },
  {
    title: 'range ends of different digit counts',
    yaml: source() + 'numbering:\n  reserved:\n    - from: "900"\n      to: "1999"\n',
    expect: { path: 'numbering.reserved[0]', line: 9, column: 7, message: /same number of digits/ },
  },
  {
    title: 'range end written as a number',
    yaml: source() + 'numbering:\n  ranges:\n    - { from: 1000, to: "1999" }\n',
    expect: { path: 'numbering.ranges[0].from', line: 9, column: 15, message: /^must be a string$/ },
  },
  {
    title: 'missing required key',
    yaml: 'sources:\n  - name: hr\n    type: csv\n    csv: { folder: inbox }\n',
    expect: { path: 'sources[0].mapping', line: 2, column: 5, message: /^is required$/ },
  },
  {
    title: 'enum value',
    yaml: source('      mode: mirror\n'),
    expect: { path: 'sources[0].csv.mode', line: 7, column: 13, message: /^must be one of: "upsert", "snapshot"$/ },
  },
  {
    title: 'unknown target type',
    yaml: source() + 'target:\n  type: freepbx\n',
    expect: { path: 'target.type', line: 8, column: 9, message: /^must be one of: "embedded", "3cx"$/ },
  },
  {
    title: 'target without a type',
    yaml: source() + 'target:\n  storeFile: x.json\n',
    expect: { path: 'target.type', line: 8, column: 3, message: /^is required and must be a string$/ },
  },
  {
    title: 'unknown key of the 3cx target',
    yaml: source() + 'target:\n  type: 3cx\n  url: https://pbx.example.com\n  clientId: x\n  clientSecret: ${S}\n  password: y\n',
    env: { S: 'abcdefgh' },
    expect: { path: 'target.password', line: 12, column: 3, message: /^unknown key "password"$/ },
  },
  {
    title: 'csv source without a csv block',
    yaml: 'sources:\n  - name: hr\n    type: csv\n    mapping: mappings/test.yml\n',
    expect: { path: 'sources[0].csv', line: 2, column: 5, message: /needs a csv block/ },
  },
  {
    title: 'listen address',
    yaml: source() + 'status:\n  listen: "9464"\n',
    expect: { path: 'status.listen', line: 8, column: 11, message: /^must be host:port/ },
  },
  {
    title: 'status off loopback without a token',
    yaml: source() + 'status:\n  listen: "0.0.0.0:9464"\n',
    expect: { path: 'status.listen', line: 8, column: 11, message: /not a loopback address; set status.token/ },
  },
  {
    title: 'unknown time zone',
    yaml: source() + 'schedule:\n  timezone: Mars/Olympus\n',
    expect: { path: 'schedule.timezone', line: 8, column: 13, message: /unknown time zone "Mars\/Olympus"/ },
  },
  {
    title: '3cx over plain http to a remote host',
    yaml: source() + 'target:\n  type: 3cx\n  url: http://pbx.example.com\n  clientId: x\n  clientSecret: ${S}\n',
    env: { S: 'abcdefgh' },
    expect: { path: 'target.url', line: 9, column: 8, message: /must be https:\/\// },
  },
  {
    title: '3cx CA file missing',
    yaml: source() + 'target:\n  type: 3cx\n  url: https://pbx.example.com\n  clientId: x\n  clientSecret: ${S}\n  caFile: ca.pem\n',
    env: { S: 'abcdefgh' },
    expect: { path: 'target.caFile', line: 12, column: 11, message: /^CA file not found: .*ca\.pem$/ },
  },
  {
    title: '3cx client secret missing',
    yaml: source() + 'target:\n  type: 3cx\n  url: https://pbx.example.com\n  clientId: x\n',
    expect: { path: 'target.clientSecret', line: 8, column: 3, message: /^is required$/ },
  },
  {
    title: 'YAML syntax error',
    yaml: source() + 'safety:\n  maxDeletes: [1, 2\n',
    expect: { path: '', line: 9, message: /^YAML: / },
  },
  {
    title: 'duplicate YAML key',
    yaml: source() + 'stateDir: a\nstateDir: b\n',
    expect: { path: '', line: 8, column: 1, message: /^YAML: Map keys must be unique/ },
  },
  {
    title: 'e-mail sender',
    yaml: source() + 'mail:\n  from: not an address\n',
    expect: { path: 'mail.from', line: 8, column: 9, message: /^must be an e-mail address$/ },
  },
  {
    title: 'alert recipient',
    yaml: source() + 'mail:\n  alertsTo:\n    - it@example.com\n    - it-team\n',
    expect: { path: 'mail.alertsTo[1]', line: 10, column: 7, message: /^must be an e-mail address$/ },
  },
];

for (const c of cases) {
  test(`problem: ${c.title}`, async (t) => {
    const file = await serviceFile(c.yaml);
    const result = await validateConfig(file, { env: c.env ?? {} });
    t.is(result.config, undefined);
    t.is(result.problems.length, 1, JSON.stringify(result.problems, null, 2));
    const p = result.problems[0]!;
    t.is(p.file, file);
    t.is(p.path, c.expect.path);
    t.is(p.line, c.expect.line);
    if (c.expect.column !== undefined) t.is(p.column, c.expect.column);
    t.regex(p.message, c.expect.message);
  });
}

test('every problem of a broken file comes in one ConfigError, in file order', async (t) => {
  const file = await serviceFile(yaml`
    stateDir: data
    colour: blue
    sources:
      - name: hr
        type: csv
        mapping: mappings/test.yml
        csv: { folder: inbox }
      - name: hr
        type: csv
        mapping: mappings/missing.yml
        csv: { folder: inbox2 }
    schedule:
      poll: "*/5 * * *"
    safety:
      maxDeletes: many
    numbering:
      ranges:
        - { from: "300", to: "200" }
  `);
  const err = await t.throwsAsync(loadConfig(file, { env: {} }), { instanceOf: ConfigError });
  const got = err!.problems.map((p: ConfigProblem) => [p.line, p.path]);
  t.deepEqual(got, [
    [2, 'colour'],
    [8, 'sources[1].name'],
    [10, 'sources[1].mapping'],
    [13, 'schedule.poll'],
    [15, 'safety.maxDeletes'],
    [18, 'numbering.ranges[0]'],
  ]);
  t.regex(err!.message, /6 problems in the configuration/);
  for (const p of err!.problems) t.true(err!.message.includes(`${file}:${p.line}:${p.column}: ${p.path}: ${p.message}`));
});

const warningCases: Array<{ title: string; yaml: string; path: string; message: RegExp }> = [
  {
    title: 'emergency number inside a range',
    yaml: source() + 'numbering:\n  ranges: [{ from: "100", to: "199" }]\n  emergency: ["112"]\n',
    path: 'numbering.emergency[0]',
    message: /^emergency number 112 lies inside range 100-199; it will never be allocated$/,
  },
  {
    title: 'built-in emergency number inside a range',
    yaml: source() + 'numbering:\n  ranges: [{ from: "900", to: "999" }]\n  emergency: []\n',
    path: 'numbering.ranges',
    message: /^emergency number 911 lies inside range 900-999/,
  },
  {
    title: 'no sources',
    yaml: 'stateDir: data\n',
    path: 'sources',
    message: /no sources configured/,
  },
  {
    title: 'wildcard provisioning listen without a public URL',
    yaml: source() + 'provisioning:\n  listen: "0.0.0.0:8089"\n',
    path: 'provisioning.publicUrl',
    message: /phones need a reachable URL/,
  },
];

for (const c of warningCases) {
  test(`warning, not error: ${c.title}`, async (t) => {
    const file = await serviceFile(c.yaml);
    const result = await validateConfig(file, { env: {} });
    t.deepEqual(result.problems, []);
    t.truthy(result.config);
    const w = result.warnings.find((x) => x.path === c.path);
    t.truthy(w, JSON.stringify(result.warnings));
    t.regex(w!.message, c.message);
  });
}

test('a loopback http URL is accepted for 3cx (fake servers, tunnels)', async (t) => {
  const file = await serviceFile(source() + 'target:\n  type: 3cx\n  url: http://127.0.0.1:5001\n  clientId: x\n  clientSecret: ${S}\n');
  const result = await validateConfig(file, { env: { S: 'abcdefgh' } });
  t.deepEqual(result.problems, []);
});

test('an empty file is a valid config with defaults and a warning', async (t) => {
  const file = await serviceFile('');
  const result = await validateConfig(file, { env: {} });
  t.deepEqual(result.problems, []);
  t.deepEqual(result.config?.sources, []);
  t.deepEqual(result.warnings.map((w) => w.path), ['sources']);
});

test('a file that is not a mapping is one problem', async (t) => {
  const file = await serviceFile('- a\n- b\n');
  const result = await validateConfig(file, { env: {} });
  t.deepEqual(result.problems.map((p) => [p.line, p.message]), [[1, 'must be a mapping of settings (key: value)']]);
});
