import test from 'ava';
import { ODataQueryError, matchesFilter, parseFilter, parseQueryOptions, sortRows } from './odata.js';

const row = {
  Number: '105',
  FirstName: "O'Brien",
  LastName: 'Smith',
  EmailAddress: 'Pat.Smith@Example.com',
  Enabled: true,
  Mobile: null,
  TrunkId: 5,
  RoutingRule: { OfficeHoursDestination: { Number: '105' } },
};

const table: Array<[string, boolean]> = [
  ["Number eq '105'", true],
  ["Number eq '100'", false],
  ["Number ne '100'", true],
  ["Number gt '104'", true],
  ["Number ge '105'", true],
  ["Number lt '105'", false],
  ["Number le '105'", true],
  ["Number ge '100' and Number lt '200'", true],
  ["Number ge '100' and Number lt '105'", false],
  ["Number eq '100' or Number eq '105'", true],
  ["not (Number eq '105')", false],
  ["not Number eq '100'", true],
  ['Enabled eq true', true],
  ['Enabled eq false', false],
  ['Mobile eq null', true],
  ['Mobile ne null', false],
  ['EmailAddress ne null', true],
  ['TrunkId eq 5', true],
  ['TrunkId gt 4 and TrunkId lt 6', true],
  ["FirstName eq 'O''Brien'", true],
  ["tolower(EmailAddress) eq 'pat.smith@example.com'", true],
  ["toupper(LastName) eq 'SMITH'", true],
  ["contains(FirstName,'Bri')", true],
  ["contains(Mobile,'1')", false],
  ["startswith(Number,'10')", true],
  ["endswith(EmailAddress,'.com')", true],
  ["(contains(FirstName,'zz') or contains(LastName,'mit') or startswith(Number,'9')) and Enabled eq true", true],
  ["RoutingRule/OfficeHoursDestination/Number eq '105'", true],
  ["Number eq '1' or Number eq '2' and Enabled eq true", false],
];

for (const [expr, expected] of table) {
  test(`filter: ${expr}`, (t) => {
    t.is(matchesFilter(parseFilter(expr), row), expected);
  });
}

test('filter: and binds tighter than or', (t) => {
  // "A or B and C" is "A or (B and C)": true or (false and x) = true
  t.true(matchesFilter(parseFilter("Number eq '105' or Number eq 'x' and Enabled eq false"), row));
});

test('filter: syntax and type errors throw ODataQueryError', (t) => {
  for (const bad of ["Number eq '105", 'Number eq', "Number eq '1' )", "bogus(Number,'1')", 'Number eq 105', "Groups/any(g: g/GroupId eq 1)"]) {
    t.throws(() => matchesFilter(parseFilter(bad), row), { instanceOf: ODataQueryError }, bad);
  }
});

test('query options: $select, nested $expand, $orderby, paging', (t) => {
  const o = parseQueryOptions({
    $select: 'Id,Number',
    $expand: 'Groups($expand=Rights;$select=GroupId),Phones',
    $orderby: 'LastName desc,Number',
    $top: '10',
    $skip: '5',
    $count: 'true',
  });
  t.deepEqual(o.select, ['Id', 'Number']);
  t.deepEqual([...o.expand.keys()], ['Groups', 'Phones']);
  t.deepEqual([...o.expand.get('Groups')!.expand.keys()], ['Rights']);
  t.deepEqual(o.expand.get('Groups')!.select, ['GroupId']);
  t.deepEqual(o.orderby, [
    { path: ['LastName'], desc: true },
    { path: ['Number'], desc: false },
  ]);
  t.is(o.top, 10);
  t.is(o.skip, 5);
  t.true(o.count);
  t.throws(() => parseQueryOptions({ $top: '-1' }), { instanceOf: ODataQueryError });
  t.throws(() => parseQueryOptions({ $bogus: '1' }), { instanceOf: ODataQueryError });
});

test('sortRows: nulls first ascending, multi-key', (t) => {
  const rows = [
    { a: 'b', n: 2 },
    { a: null, n: 1 },
    { a: 'a', n: 3 },
    { a: 'b', n: 1 },
  ];
  sortRows(rows, [
    { path: ['a'], desc: false },
    { path: ['n'], desc: true },
  ]);
  t.deepEqual(
    rows.map((r) => `${r.a}${r.n}`),
    ['null1', 'a3', 'b2', 'b1'],
  );
});
