import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import { ConfigError } from '../../src/errors/index.js';
import type { Mapping } from '../../src/mapping/types.js';
import { MappingFile, loadMapping, validateMappingFile } from '../../src/mapping/load.js';
import { BASE, identity, options, problemsOf, userOf } from './_helpers.js';

async function writeTemp(name: string, text: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'pbxsync-mapping-'));
  const file = path.join(dir, name);
  await writeFile(file, text);
  return file;
}

const BROKEN = `# a mapping with one mistake per line
fields:
  firstName: FirstName
  emial: EmailAddress
  mobile: { from: 12 }
role:
  rules:
    - { group: Admins, role: superuser }
  default: users
extension:
  transform: { lastDigits: 1 }
adopt: [email, phone]
welcome: "yes"
`;

test('load: every schema problem is reported with its line, column and path', async (t) => {
  const file = await writeTemp('broken.yml', BROKEN);
  const err = await t.throwsAsync(loadMapping(file, options), { instanceOf: ConfigError });
  const got = err.problems.map((p) => [p.line, p.column, p.path, p.message]);
  t.deepEqual(got, [
    [4, 3, 'fields.emial', 'unknown property "emial"'],
    [5, 19, 'fields.mobile.from', 'must be string'],
    [6, 1, 'role', 'missing required property "maxRole"'],
    [8, 30, 'role.rules[0].role', 'must be one of: users, receptionists, group_admins, managers, group_owners, system_admins, system_owners'],
    [11, 28, 'extension.transform.lastDigits', 'must be >= 2'],
    [12, 16, 'adopt[1]', 'must be one of: email, extension'],
    [13, 10, 'welcome', 'must be boolean'],
  ]);
  t.true(err.problems.every((p) => p.file === file));
  t.regex(err.message, /7 problems/);
  t.regex(err.message, /broken\.yml:4:3: fields\.emial: unknown property "emial"/);
});

test('load: a JSONata syntax error is a problem on the line of the expression', (t) => {
  const problems = problemsOf(`fields:\n  firstName: FirstName\n  displayName:\n    expr: "FirstName & (LastName"\n`);
  t.is(problems.length, 1);
  t.like(problems[0], { line: 4, path: 'fields.displayName.expr' });
  t.regex(problems[0].message, /^JSONata syntax error: /);
});

test('load: a JSONata error inside a block scalar points at its own line', (t) => {
  const problems = problemsOf(`fields:\n  firstName: FirstName\n  displayName:\n    expr: |\n      FirstName &\n      ' ' & (LastName\n`);
  t.like(problems[0], { line: 6, path: 'fields.displayName.expr' });
});

test('load: expression and regex syntax errors are listed even when the schema fails', (t) => {
  const problems = problemsOf(`fields:\n  firstName: FirstName\n  nickname: x\nscope:\n  include:\n    - { attribute: title, regex: "(" }\n    - { expr: "a +" }\n`);
  t.deepEqual(problems.map((p) => [p.line, p.path]), [
    [3, 'fields.nickname'],
    [6, 'scope.include[0].regex'],
    [7, 'scope.include[1].expr'],
  ]);
});

test('load: a YAML syntax error has its line', (t) => {
  const problems = problemsOf('fields:\n  firstName: FirstName\n  lastName: [a, b\n');
  t.true(problems.length > 0);
  t.true(problems.every((p) => p.message.startsWith('YAML: ')));
  t.true(problems[0].line !== undefined && problems[0].line >= 3);
});

test('load: duplicate keys are refused', (t) => {
  const problems = problemsOf('fields:\n  firstName: FirstName\n  firstName: GivenName\n');
  t.is(problems[0].line, 3);
});

test('load: a missing file is one problem, not an exception', async (t) => {
  const problems = await validateMappingFile('/nonexistent/mapping.yml', options);
  t.is(problems.length, 1);
  t.regex(problems[0].message, /cannot read/);
});

test('load: missing fields section', (t) => {
  t.deepEqual(problemsOf('welcome: true\n').map((p) => [p.line, p.path, p.message]), [[1, '', 'missing required property "fields"']]);
});

for (const name of ['3cx-csv', 'm365', 'google', 'ad', 'openldap']) {
  test(`load: shipped mapping mappings/${name}.yml loads`, async (t) => {
    const file = path.join('mappings', `${name}.yml`);
    t.deepEqual(await validateMappingFile(file, options), []);
    const mapping = await loadMapping(file, options);
    t.is(mapping.file, file);
  });
}

const DEPARTMENT_SALES = `${BASE}department:\n  value: Sales\n`;
const DEPARTMENT_SUPPORT = `${BASE}department:\n  value: Support\n`;

test('MappingFile: compiled once, again only when the text changes, and a broken edit fails until fixed', async (t) => {
  const file = await writeTemp('m.yml', DEPARTMENT_SALES);
  const mappingFile = new MappingFile(file, options);
  const department = async ({ mapping }: { mapping: Mapping }) => userOf(await mapping.map(identity())).fields.department;

  const first = await mappingFile.current();
  t.false(first.changed, 'the first compile is not a change');
  t.is(await department(first), 'Sales');
  const same = await mappingFile.current();
  t.is(same.mapping, first.mapping, 'the same text is not compiled again');
  t.false(same.changed);

  await writeFile(file, DEPARTMENT_SUPPORT);
  const edited = await mappingFile.current();
  t.true(edited.changed);
  t.is(await department(edited), 'Support');

  await writeFile(file, DEPARTMENT_SUPPORT + 'welcome: "yes"\n');
  const broken = await t.throwsAsync(() => mappingFile.current(), { instanceOf: ConfigError });
  t.regex(broken!.message, /m\.yml has 1 problem/);
  t.regex(broken!.message, /m\.yml:5:10: welcome: must be boolean/, 'the problem has its line, column and field');
  await t.throwsAsync(() => mappingFile.current(), { instanceOf: ConfigError }, 'still broken: no falling back to the last good version');

  await rm(file);
  const gone = await t.throwsAsync(() => mappingFile.current(), { instanceOf: ConfigError });
  t.regex(gone!.message, /cannot read the mapping file/);

  await writeFile(file, DEPARTMENT_SALES);
  const fixed = await mappingFile.current();
  t.true(fixed.changed);
  t.is(await department(fixed), 'Sales');
});
