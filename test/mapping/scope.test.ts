import test from 'ava';
import type { Identity } from '../../src/model/index.js';
import { BASE, mapWith } from './_helpers.js';

interface Row {
  name: string;
  scope: string;
  who: Partial<Identity>;
  inScope: boolean;
  /** The rule path (after `#`) that decided. */
  rule: string;
}

const alice: Partial<Identity> = {
  attributes: { FirstName: 'Alice', department: 'Sales', title: 'Sales Manager', employeeType: 'Staff' },
  groups: ['PBX Users', 'Sales-EU'],
  origin: { dn: 'CN=Alice,OU=Sales,OU=Staff,DC=example,DC=com', ou: '/Staff/Sales' },
};

const rows: Row[] = [
  { name: 'no scope: everyone', scope: '', who: alice, inScope: true, rule: 'scope' },
  { name: 'include equals (case-insensitive)', scope: 'include: [{ attribute: department, equals: sales }]', who: alice, inScope: true, rule: 'scope.include[0]' },
  { name: 'include equals, caseSensitive fails', scope: 'include: [{ attribute: department, equals: sales, caseSensitive: true }]', who: alice, inScope: false, rule: 'scope.include' },
  { name: 'include oneOf', scope: 'include: [{ attribute: department, oneOf: [Support, Sales] }]', who: alice, inScope: true, rule: 'scope.include[0]' },
  { name: 'include regex', scope: "include: [{ attribute: title, regex: 'manager$' }]", who: alice, inScope: true, rule: 'scope.include[0]' },
  { name: 'include regex no match', scope: "include: [{ attribute: title, regex: '^Engineer' }]", who: alice, inScope: false, rule: 'scope.include' },
  { name: 'include present: false on missing attribute', scope: 'include: [{ attribute: mobile, present: false }]', who: alice, inScope: true, rule: 'scope.include[0]' },
  { name: 'attribute name matched case-insensitively', scope: 'include: [{ attribute: DEPARTMENT, equals: Sales }]', who: alice, inScope: true, rule: 'scope.include[0]' },
  { name: 'second include rule matches', scope: 'include: [{ group: Nobody }, { group: pbx users }]', who: alice, inScope: true, rule: 'scope.include[1]' },
  { name: 'group list', scope: 'include: [{ group: [Other, Sales-EU] }]', who: alice, inScope: true, rule: 'scope.include[0]' },
  { name: 'not a member', scope: 'include: [{ group: Finance }]', who: alice, inScope: false, rule: 'scope.include' },
  { name: 'exclude by group wins over include', scope: 'include: [{ group: PBX Users }]\n  exclude: [{ group: Sales-EU }]', who: alice, inScope: false, rule: 'scope.exclude[0]' },
  { name: 'exclude by attribute oneOf', scope: 'exclude: [{ attribute: employeeType, oneOf: [Contractor, Staff] }]', who: alice, inScope: false, rule: 'scope.exclude[0]' },
  { name: 'OU: DN suffix', scope: "include: [{ ou: 'OU=Staff, DC=example, DC=com' }]", who: alice, inScope: true, rule: 'scope.include[0]' },
  { name: 'OU: DN suffix elsewhere', scope: "include: [{ ou: 'OU=Staff,DC=other,DC=com' }]", who: alice, inScope: false, rule: 'scope.include' },
  { name: 'OU: not a partial RDN', scope: "include: [{ ou: 'Sales,OU=Staff,DC=example,DC=com' }]", who: alice, inScope: false, rule: 'scope.include' },
  { name: 'OU: org-unit path prefix', scope: 'include: [{ ou: /Staff }]', who: alice, inScope: true, rule: 'scope.include[0]' },
  { name: 'OU: org-unit path is not a string prefix', scope: 'include: [{ ou: /Sta }]', who: alice, inScope: false, rule: 'scope.include' },
  { name: 'exclude OU path', scope: 'exclude: [{ ou: /Staff/Sales }]', who: alice, inScope: false, rule: 'scope.exclude[0]' },
  { name: 'all tests of a condition must hold', scope: 'include: [{ group: PBX Users, attribute: department, equals: Support }]', who: alice, inScope: false, rule: 'scope.include' },
  { name: 'expression condition', scope: "include: [{ expr: \"'Sales-EU' in groups and department = 'Sales'\" }]", who: alice, inScope: true, rule: 'scope.include[0]' },
  { name: 'expression condition false', scope: 'include: [{ expr: disabled }]', who: alice, inScope: false, rule: 'scope.include' },
];

for (const row of rows) {
  test(`scope: ${row.name}`, async (t) => {
    const result = await mapWith(`${BASE}scope:\n  ${row.scope || 'include: []'}\n`, row.who);
    t.is(result.kind, row.inScope ? 'user' : 'out-of-scope');
    const decision = (result.kind === 'user' ? result.user.reasons : result.kind === 'out-of-scope' ? result.reasons : []).find((d) => d.field === 'scope');
    t.is(decision?.rule, `test.yml#${row.rule}`);
    t.is(decision?.value, row.inScope);
  });
}

test('scope: an out-of-scope result carries the key and a readable reason', async (t) => {
  const result = await mapWith(`${BASE}scope:\n  exclude: [{ group: Sales-EU }]\n`, alice);
  t.deepEqual(result.kind === 'out-of-scope' && result.key, { source: 'hr', anchor: 'a-1' });
  t.is(result.kind === 'out-of-scope' && result.reasons[0].reason, 'excluded: member of group "Sales-EU"');
});

test('scope: a deleted tombstone is out of scope', async (t) => {
  const result = await mapWith(BASE, { deleted: true, attributes: {} });
  t.is(result.kind, 'out-of-scope');
});
