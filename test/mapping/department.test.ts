import test from 'ava';
import type { Identity } from '../../src/model/index.js';
import { BASE, mapWith, problemsOf, userOf } from './_helpers.js';

interface Row {
  name: string;
  department: string;
  who: Partial<Identity>;
  main: string;
  extra?: string[];
  rule: string;
}

const TABLE = '  table:\n    PBX Sales: Sales\n    PBX Support: Support\n    PBX Field: Sales\n';

const rows: Row[] = [
  { name: 'attribute as-is', department: '  from: dept\n', who: { attributes: { FirstName: 'A', dept: 'Finance' } }, main: 'Finance', rule: 'department' },
  { name: 'attribute empty: default DEFAULT', department: '  from: dept\n', who: { attributes: { FirstName: 'A', dept: '' } }, main: 'DEFAULT', rule: 'department.default' },
  { name: 'attribute through a table (case-insensitive)', department: '  from: dept\n  table: { sales-eu: Sales }\n', who: { attributes: { FirstName: 'A', dept: 'SALES-EU' } }, main: 'Sales', rule: 'department.table' },
  { name: 'attribute not in the table: default', department: '  from: dept\n  table: { sales-eu: Sales }\n  default: Other\n', who: { attributes: { FirstName: 'A', dept: 'HR' } }, main: 'Other', rule: 'department.default' },
  { name: 'groups: first table entry wins', department: `  fromGroups: true\n${TABLE}`, who: { groups: ['PBX Support', 'pbx sales'] }, main: 'Sales', rule: 'department.table' },
  { name: 'groups: none mapped', department: `  fromGroups: true\n${TABLE}`, who: { groups: ['Other'] }, main: 'DEFAULT', rule: 'department.default' },
  { name: 'groups with extra departments', department: `  fromGroups: true\n  extra: mappedGroups\n${TABLE}`, who: { groups: ['PBX Support', 'PBX Sales', 'PBX Field', 'Other'] }, main: 'Sales', extra: ['Support'], rule: 'department.table' },
  { name: 'OU: most specific DN suffix', department: "  fromOu: true\n  table:\n    'OU=Staff,DC=example,DC=com': Staff\n    'OU=Sales,OU=Staff,DC=example,DC=com': Sales\n", who: { origin: { dn: 'CN=A,OU=Sales,OU=Staff,DC=example,DC=com' } }, main: 'Sales', rule: 'department.table' },
  { name: 'OU: org-unit path', department: '  fromOu: true\n  table:\n    /Staff: Staff\n    /Staff/Support: Support\n', who: { origin: { ou: '/Staff/Support/Tier2' } }, main: 'Support', rule: 'department.table' },
  { name: 'OU: outside every entry', department: "  fromOu: true\n  table: { 'OU=Staff,DC=example,DC=com': Staff }\n", who: { origin: { dn: 'CN=A,OU=Guests,DC=example,DC=com' } }, main: 'DEFAULT', rule: 'department.default' },
  { name: 'expression', department: "  expr: \"$uppercase(dept)\"\n", who: { attributes: { FirstName: 'A', dept: 'hr' } }, main: 'HR', rule: 'department' },
  { name: 'constant', department: '  value: Everyone\n', who: {}, main: 'Everyone', rule: 'department' },
];

for (const row of rows) {
  test(`department: ${row.name}`, async (t) => {
    const user = userOf(await mapWith(`${BASE}department:\n${row.department}`, { attributes: { FirstName: 'A' }, ...row.who }));
    t.is(user.fields.department, row.main);
    if (row.extra) t.deepEqual(user.fields.extraDepartments, row.extra);
    else t.false('extraDepartments' in user.fields);
    t.is(user.reasons.find((d) => d.field === 'department')?.rule, `test.yml#${row.rule}`);
  });
}

test('department: create follows the mapping (default false)', async (t) => {
  t.false(userOf(await mapWith(`${BASE}department: { from: dept }\n`)).createDepartments);
  t.true(userOf(await mapWith(`${BASE}department: { from: dept, create: true }\n`)).createDepartments);
});

test('department: exactly one source, and group/OU lookups need a table', (t) => {
  t.deepEqual(problemsOf(`${BASE}department: { from: a, fromGroups: true }\n`).map((p) => [p.path, p.message]), [['department', 'use only one of from, fromGroups']]);
  t.deepEqual(problemsOf(`${BASE}department: { fromOu: true }\n`).map((p) => [p.path, p.message]), [['department', 'fromOu needs a table']]);
  t.deepEqual(problemsOf(`${BASE}department: { default: X }\n`).map((p) => p.path), ['department']);
});
