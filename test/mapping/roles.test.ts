import test from 'ava';
import type { RoleName } from '../../src/model/index.js';
import { BASE, issuesOf, mapWith, problemsOf, userOf } from './_helpers.js';

const RULES = `role:
  rules:
    - { group: PBX Admins, role: system_admins }
    - { attribute: title, regex: manager, role: managers }
    - from: Role
    - { expr: "department = 'Front Desk'", role: receptionists }
  default: users
  maxRole: system_admins
`;

interface Row {
  name: string;
  attributes?: Record<string, unknown>;
  groups?: string[];
  role?: RoleName;
  rule?: string;
  issue?: RegExp;
}

const rows: Row[] = [
  { name: 'group rule', groups: ['pbx admins'], role: 'system_admins', rule: 'role.rules[0]' },
  { name: 'attribute regex rule', attributes: { title: 'Sales Manager' }, role: 'managers', rule: 'role.rules[1]' },
  { name: 'first matching rule wins', groups: ['PBX Admins'], attributes: { title: 'Manager' }, role: 'system_admins', rule: 'role.rules[0]' },
  { name: 'role cell: identifier', attributes: { Role: 'group_owners' }, role: 'group_owners', rule: 'role.rules[2]' },
  { name: 'role cell: UI name', attributes: { Role: 'Receptionist' }, role: 'receptionists', rule: 'role.rules[2]' },
  { name: 'role cell: 3CX CSV markup', attributes: { Role: '<rolename="managers"/>' }, role: 'managers', rule: 'role.rules[2]' },
  { name: 'role cell: typographic quotes as in the 3CX manual', attributes: { Role: '”<rolename=””group_admins””/>”' }, role: 'group_admins', rule: 'role.rules[2]' },
  { name: 'role cell above maxRole is capped', attributes: { Role: '”<rolename=””system_owners””/>”' }, role: 'system_admins', rule: 'role.maxRole' },
  { name: 'empty role cell falls through', attributes: { Role: '', department: 'Front Desk' }, role: 'receptionists', rule: 'role.rules[3]' },
  { name: 'default', attributes: {}, role: 'users', rule: 'role.default' },
  { name: 'unknown role text', attributes: { Role: 'boss' }, issue: /"boss" is not a role/ },
];

for (const row of rows) {
  test(`role: ${row.name}`, async (t) => {
    const result = await mapWith(`${BASE}${RULES}`, { attributes: { FirstName: 'Ann', ...row.attributes }, groups: row.groups ?? [] });
    if (row.issue) {
      t.deepEqual(issuesOf(result).map((i) => i.field), ['Role']);
      t.regex(issuesOf(result)[0].message, row.issue);
      return;
    }
    const user = userOf(result);
    t.is(user.fields.role, row.role);
    t.is(user.reasons.find((d) => d.field === 'role')?.rule, `test.yml#${row.rule}`);
  });
}

test('role: grants above maxRole in the mapping itself are refused at load', (t) => {
  const problems = problemsOf(`${BASE}role:\n  rules:\n    - { group: X, role: system_owners }\n  default: managers\n  maxRole: users\n`);
  t.deepEqual(problems.map((p) => [p.path, p.line]), [['role.rules[0].role', 5], ['role.default', 6]]);
});

test('role: a rule needs exactly one of role and from', (t) => {
  const problems = problemsOf(`${BASE}role:\n  rules:\n    - { group: X }\n  maxRole: users\n`);
  t.deepEqual(problems.map((p) => [p.path, p.line, p.message]), [['role.rules[0]', 5, 'a role rule needs exactly one of role or from']]);
});

test('role: without a role section the role is not managed', async (t) => {
  t.false('role' in userOf(await mapWith(BASE, { attributes: { FirstName: 'Ann', Role: 'managers' } })).fields);
});
