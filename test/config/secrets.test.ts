import test from 'ava';
import { inspect } from 'node:util';
import path from 'node:path';
import { loadConfig, validateConfig } from '../../src/config/load.js';
import { Secret, resolveSecretRef } from '../../src/config/secret.js';
import type { ServiceConfig } from '../../src/config/types.js';
import { ConfigError, formatProblem } from '../../src/errors/index.js';
import { redact } from '../../src/log.js';
import { fixture, serviceFile, yaml } from './_fixture.js';

const source = yaml`
  sources:
    - name: hr
      type: csv
      mapping: mappings/test.yml
      csv: { folder: inbox }
`;

const threeCx = (secret: string) => yaml`
  target:
    type: 3cx
    url: https://pbx.example.com
    clientId: pbxsync
    clientSecret: ${secret}
`;

interface SecretCase {
  title: string;
  /** The value written at target.clientSecret. */
  ref: string;
  env?: NodeJS.ProcessEnv;
  files?: Record<string, string>;
  expect: { value: string } | { problem: RegExp; mustNotMention?: string };
  warning?: string;
}

const secretCases: SecretCase[] = [
  { title: 'whole-string env reference', ref: '${TCX_SECRET}', env: { TCX_SECRET: 'env-secret-1' }, expect: { value: 'env-secret-1' } },
  {
    title: 'embedded env references',
    ref: '"pre-${A_PART}-${B_PART}"',
    env: { A_PART: 'alpha-part', B_PART: 'beta-part' },
    expect: { value: 'pre-alpha-part-beta-part' },
  },
  { title: 'file reference, relative and trimmed', ref: '{ file: secrets/tcx }', files: { 'secrets/tcx': '  file-secret-1\n' }, expect: { value: 'file-secret-1' } },
  {
    title: 'missing environment variable names the variable',
    ref: '${NOT_SET_VAR}',
    env: { OTHER: 'x' },
    expect: { problem: /^environment variable NOT_SET_VAR is not set$/ },
  },
  {
    title: 'empty environment variable is a problem, and said to be empty',
    ref: '"x${EMPTY_VAR}"',
    env: { EMPTY_VAR: '' },
    expect: { problem: /^environment variable EMPTY_VAR is empty$/ },
  },
  {
    title: 'unset and empty variables are told apart',
    ref: '"${EMPTY_A}${MISS_C}${EMPTY_B}"',
    env: { EMPTY_A: '', EMPTY_B: '' },
    expect: { problem: /^environment variable MISS_C is not set; environment variables EMPTY_A, EMPTY_B are empty$/ },
  },
  {
    title: 'several missing variables are named together, the set one is not revealed',
    ref: '"${SET_ONE}:${MISS_A}:${MISS_B}"',
    env: { SET_ONE: 'value-that-is-set' },
    expect: { problem: /^environment variables MISS_A, MISS_B are not set$/, mustNotMention: 'value-that-is-set' },
  },
  { title: 'unreadable file names the file', ref: '{ file: secrets/none }', expect: { problem: /^cannot read secret file .*secrets\/none \(ENOENT\)$/ } },
  { title: 'empty file', ref: '{ file: secrets/empty }', files: { 'secrets/empty': ' \n' }, expect: { problem: /^secret file .*secrets\/empty is empty$/ } },
  {
    title: 'inline literal is accepted with a warning',
    ref: 'inline-literal-secret',
    expect: { value: 'inline-literal-secret' },
    warning: 'inline secret at target.clientSecret; use ${ENV} or a file',
  },
];

for (const c of secretCases) {
  test(`secret: ${c.title}`, async (t) => {
    const file = await serviceFile(threeCx(c.ref) + source, c.files);
    const result = await validateConfig(file, { env: c.env ?? {} });
    t.deepEqual(
      result.warnings.map((w) => w.message),
      c.warning ? [c.warning] : [],
    );
    if ('value' in c.expect) {
      t.deepEqual(result.problems, []);
      const target = result.config!.target;
      t.is(target.type === '3cx' ? target.clientSecret.reveal() : undefined, c.expect.value);
      // Registered with the log redactor.
      t.is(redact(`x ${c.expect.value} y`), 'x [redacted] y');
    } else {
      t.is(result.problems.length, 1);
      const p = result.problems[0]!;
      t.like(p, { path: 'target.clientSecret', line: 5, column: 17 });
      t.regex(p.message, c.expect.problem);
      if (c.expect.mustNotMention) t.false(formatProblem(p).includes(c.expect.mustNotMention));
    }
  });
}

test('secret references work at mail.smtpUrl and status.token too', async (t) => {
  const file = await serviceFile(
    source +
      yaml`
        mail:
          smtpUrl: "smtps://pbx:\${SMTP_PASS}@mail.example.com:465"
        status:
          listen: "0.0.0.0:9464"
          token: { file: /dev/null }
      `,
  );
  const result = await validateConfig(file, { env: { SMTP_PASS: 'smtp-pass-word' } });
  // /dev/null is readable but empty: the token is a problem, and so (no token) is nothing else.
  t.deepEqual(result.problems.map((p) => [p.path, p.message]), [['status.token', 'secret file /dev/null is empty']]);
});

test('no secret value appears in JSON, util.inspect, templates or ConfigError messages', async (t) => {
  const values = {
    TCX: 'tcx-secret-7f3a9c',
    SMTP: 'smtp-secret-b81e24',
    TOKEN: 'status-token-55c0de',
    INLINE: 'inline-secret-9d2f11',
  };
  const dir = await fixture({ 'token.txt': `${values.TOKEN}\n` });
  const body = (extra: string) =>
    threeCx('${TCX_SECRET}') +
    source +
    yaml`
      mail:
        smtpUrl: "smtp://u:\${SMTP_PASS}@mail.example.com"
      status:
        listen: "0.0.0.0:0"
        token: { file: ${path.join(dir, 'token.txt')} }
    ` +
    extra;
  const env = { TCX_SECRET: values.TCX, SMTP_PASS: values.SMTP };

  const config: ServiceConfig = await loadConfig(await serviceFile(body('')), { env });
  t.is(config.target.type === '3cx' ? config.target.clientSecret.reveal() : '', values.TCX);
  t.is(config.mail.smtpUrl?.reveal(), `smtp://u:${values.SMTP}@mail.example.com`);
  t.is(config.status.token?.reveal(), values.TOKEN);
  const renderings = [
    JSON.stringify(config),
    inspect(config, { depth: Infinity, showHidden: true }),
    `${String(config.mail.smtpUrl)} ${config.status.token}`,
  ];

  // A file with problems next to the secrets: an inline secret in a broken line and a type error elsewhere.
  const broken = body(`logging:\n  level: loud\n`).replace('clientSecret: ${TCX_SECRET}', `clientSecret: "${values.INLINE}\n  x: [`);
  const err1 = await t.throwsAsync(loadConfig(await serviceFile(broken), { env }), { instanceOf: ConfigError });
  t.true(err1!.problems.length > 0 && err1!.problems.every((p) => p.message.startsWith('YAML: ')));
  const withInline = body(`logging:\n  level: loud\n`).replace('${TCX_SECRET}', values.INLINE).replace('SMTP_PASS', 'NO_SUCH_VAR');
  const err2 = await t.throwsAsync(loadConfig(await serviceFile(withInline), { env }), { instanceOf: ConfigError });
  t.true(err2!.problems.some((p) => p.message.includes('NO_SUCH_VAR')));
  renderings.push(err1!.message, err2!.message, JSON.stringify(err1!.problems), JSON.stringify(err2!.problems), inspect(err2));

  for (const text of renderings) for (const v of Object.values(values)) t.false(text.includes(v), `leaked ${v}`);
  t.true(renderings[0]!.includes('"clientSecret":"[redacted]"'));
});

test('Secret prints [redacted] everywhere but reveal()', (t) => {
  const s = new Secret('plain-value-1234');
  t.is(s.reveal(), 'plain-value-1234');
  t.is(String(s), '[redacted]');
  t.is(`${s}`, '[redacted]');
  t.is(JSON.stringify({ s }), '{"s":"[redacted]"}');
  t.is(inspect({ s }), "{ s: [redacted] }");
});

test('resolveSecretRef is usable by connectors for their own settings', async (t) => {
  const r = await resolveSecretRef('${LDAP_BIND_PW}', { env: { LDAP_BIND_PW: 'bind-pw-1234' }, baseDir: '/', path: 'sources[2].settings.bindPassword' });
  t.is(r.secret?.reveal(), 'bind-pw-1234');
  const inline = await resolveSecretRef('literal-1234', { env: {}, baseDir: '/', path: 'sources[2].settings.bindPassword' });
  t.is(inline.warning, 'inline secret at sources[2].settings.bindPassword; use ${ENV} or a file');
});

test('loadConfig hands warnings to onWarning', async (t) => {
  const file = await serviceFile(threeCx('literal-secret-x') + source);
  const seen: string[] = [];
  await loadConfig(file, { env: {}, onWarning: (w) => seen.push(formatProblem(w)) });
  t.deepEqual(seen, [`${file}:5:17: target.clientSecret: inline secret at target.clientSecret; use \${ENV} or a file`]);
});

/** A password with every character that ends or splits a URL's user-info, and one that starts an escape. */
const NASTY = 'Xy9#k/L@m: n%41?';
const NASTY_ENCODED = 'Xy9%23k%2FL%40m%3A%20n%2541%3F';

const urlCases: Array<[title: string, ref: string, env: NodeJS.ProcessEnv, value: string]> = [
  ['password in the user-info is percent-encoded', 'smtp://pbx:${P}@mail.example.com:587', { P: NASTY }, `smtp://pbx:${NASTY_ENCODED}@mail.example.com:587`],
  ['user name too', 'smtps://${U}:${P}@mail.example.com', { U: 'pbx@example.com', P: 'a b' }, 'smtps://pbx%40example.com:a%20b@mail.example.com'],
  ['a literal @ in the user name: the last @ ends the user-info', 'smtp://pbx@example.com:${P}@mail.example.com', { P: 'p@ss' }, 'smtp://pbx@example.com:p%40ss@mail.example.com'],
  ['host and port are not encoded', 'smtp://pbx:${P}@${H}:${PORT}', { P: 'p/w', H: 'mail.example.com', PORT: '25' }, 'smtp://pbx:p%2Fw@mail.example.com:25'],
  ['no user-info: nothing is encoded', 'smtp://${H}:25', { H: 'mail.example.com' }, 'smtp://mail.example.com:25'],
  ['a whole-URL variable is taken as it is', '${SMTP_URL}', { SMTP_URL: 'smtp://pbx:p%23w@mail.example.com' }, 'smtp://pbx:p%23w@mail.example.com'],
  ['an @ after the authority does not make user-info', 'smtp://mail.example.com/${X}@y', { X: 'a#b' }, 'smtp://mail.example.com/a#b@y'],
];

for (const [title, ref, env, value] of urlCases) {
  test(`URL secret: ${title}`, async (t) => {
    const r = await resolveSecretRef(ref, { env, baseDir: '/', path: 'mail.smtpUrl', url: true });
    t.is(r.problem, undefined);
    t.is(r.secret?.reveal(), value);
  });
}

test('URL secret: without the url option nothing is encoded (other secrets are no URLs)', async (t) => {
  const r = await resolveSecretRef('smtp://pbx:${P}@mail.example.com', { env: { P: 'p#w1' }, baseDir: '/', path: 'target.clientSecret' });
  t.is(r.secret?.reveal(), 'smtp://pbx:p#w1@mail.example.com');
});

test('URL secret: the variable is registered with the redactor raw and percent-encoded, the URL as substituted', async (t) => {
  const pass = 'Qv8#r/T@s: e%1';
  const encoded = encodeURIComponent(pass);
  const r = await resolveSecretRef('smtp://pbx:${REG_P}@mail.example.com', { env: { REG_P: pass }, baseDir: '/', path: 'mail.smtpUrl', url: true });
  t.is(r.secret?.reveal(), `smtp://pbx:${encoded}@mail.example.com`);
  t.is(redact(`a ${pass} b`), 'a [redacted] b');
  t.is(redact(`a ${encoded} b`), 'a [redacted] b');
  t.is(redact(`The URL smtp://pbx:${encoded}@mail.example.com is invalid`), 'The URL [redacted] is invalid');
});

const smtpProblems: Array<[title: string, url: string, env: NodeJS.ProcessEnv, message: RegExp]> = [
  ['port out of range', 'smtp://pbx:${SMTP_PASS}@mail.example.com:99999', { SMTP_PASS: 'pw-77aa#c' }, /^must have a port from 1 to 65535$/],
  ['unknown scheme', 'smtpx://pbx:${SMTP_PASS}@mail.example.com', { SMTP_PASS: 'pw-77aa#c' }, /^must start with smtp:\/\/ or smtps:\/\//],
  ['whole-URL variable with an unencoded #', '${SMTP_URL}', { SMTP_URL: 'smtp://pbx:1234#pw-77aa@mail.example.com' }, /^must end after host:port, with no path, \?query or #fragment/],
  ['empty variable', 'smtp://pbx:${SMTP_PASS}@mail.example.com', { SMTP_PASS: '' }, /^environment variable SMTP_PASS is empty$/],
];

for (const [title, url, env, message] of smtpProblems) {
  test(`validate: mail.smtpUrl ${title} is a problem with line and path, without the secret`, async (t) => {
    const file = await serviceFile(source + yaml`
      mail:
        smtpUrl: "${url}"
    `);
    const result = await validateConfig(file, { env });
    t.is(result.config, undefined);
    t.is(result.problems.length, 1);
    t.like(result.problems[0], { file, path: 'mail.smtpUrl', line: 7, column: 12 });
    t.regex(result.problems[0]!.message, message);
    const err = await t.throwsAsync(loadConfig(file, { env }), { instanceOf: ConfigError });
    for (const text of [err!.message, JSON.stringify(err!.problems)]) {
      t.false(text.includes('pw-77aa'), 'the secret is not quoted');
    }
  });
}

test('validate: a password with # / @ : and a space in a variable loads, and the decoded password is masked', async (t) => {
  const file = await serviceFile(source + yaml`
    mail:
      smtpUrl: "smtps://\${SMTP_URL_USER}:\${SMTP_PASS}@mail.example.com"
  `);
  const config = await loadConfig(file, { env: { SMTP_URL_USER: 'pbx@example.com', SMTP_PASS: 'Hg4#u/W@x: y' } });
  t.is(config.mail.smtpUrl?.reveal(), 'smtps://pbx%40example.com:Hg4%23u%2FW%40x%3A%20y@mail.example.com');

  // A whole URL written encoded by the operator: its decoded password is masked too.
  const whole = await serviceFile(source + yaml`
    mail:
      smtpUrl: { file: smtp-url }
  `, { 'smtp-url': 'smtp://pbx:Rk2%23v%2Fb@mail.example.com:25\n' });
  await loadConfig(whole, { env: {} });
  t.is(redact('AUTH Rk2#v/b failed'), 'AUTH [redacted] failed');
});
