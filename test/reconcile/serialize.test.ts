import test from 'ava';
import { UsageError } from '../../src/errors/index.js';
import { formatPlan, inInputOrder, parsePlan, serializePlan, summaryJson } from '../../src/reconcile/serialize.js';
import { binding, desired, fixed, pbxUser, planOf, read } from './_builders.js';

const PIN = '90210';

function samplePlan() {
  return planOf({
    users: [pbxUser({ vmPin: '8264' }), pbxUser({ id: 'u300', extension: '300', email: 'x@example.com' })],
    bindings: [binding('a1', 'u200', '200'), binding('gone', 'u300', '300')],
    sources: [
      read({
        desired: [
          desired({ anchor: 'a1', extension: fixed('200'), fields: { firstName: 'Noelle', vmPin: '5555' } }),
          desired({ anchor: 'n1', extension: fixed('201'), fields: { firstName: 'Bo', email: 'bo@example.com', vmPin: PIN } }),
          desired({ anchor: 'n2', extension: fixed('300'), fields: { firstName: 'Cy', email: 'cy@example.com' } }),
        ],
      }),
    ],
  });
}

test('serializePlan never contains a voicemail PIN, before or after', (t) => {
  const p = samplePlan();
  t.true(p.operations.some((o) => o.after?.vmPin === PIN), 'the in-memory plan keeps the PIN for apply');
  const text = serializePlan(p);
  for (const secret of [PIN, '8264', '5555']) t.false(text.includes(secret), secret);
  t.true(text.includes('[secret]'));
});

test('parsePlan reads back what serializePlan wrote, marked as masked', (t) => {
  const p = samplePlan();
  const back = parsePlan(serializePlan(p));
  t.true(back.secretsMasked);
  t.is(back.basis, p.basis);
  t.deepEqual(
    back.operations.map((o) => o.id),
    p.operations.map((o) => o.id),
  );
});

test('parsePlan rejects text that is not a plan', (t) => {
  t.throws(() => parsePlan('not json'), { instanceOf: UsageError });
  t.throws(() => parsePlan('{"hello":1}'), { instanceOf: UsageError, message: /not a pbxsync plan/ });
  t.throws(() => parsePlan('{"format":"pbxsync-plan/1","runId":"x"}'), { instanceOf: UsageError, message: /missing/ });
});

test('summaryJson has the DESIGN §3 shape with integer counts and masked operations', (t) => {
  const p = samplePlan();
  const s = summaryJson(p);
  t.is(s.runId, 'r1');
  t.is(s.held, null);
  t.deepEqual(Object.keys(s.summary).sort(), ['adopt', 'conflicts', 'create', 'delete', 'disable', 'enable', 'errors', 'unchanged', 'update']);
  for (const v of Object.values(s.summary)) t.true(Number.isInteger(v));
  t.deepEqual(s.summary, { create: 1, update: 1, disable: 1, enable: 0, delete: 0, adopt: 0, unchanged: 0, conflicts: 1, errors: 0 });
  t.false(JSON.stringify(s).includes(PIN));
});

test('formatPlan prints Terraform-like lines, secrets masked', (t) => {
  const text = formatPlan(samplePlan());
  t.regex(text, /^- disable 300 Amanda Camden \(absent from a complete read of inbox/m);
  t.regex(text, /^~ update 200 Noelle Camden \(first name and voicemail PIN changed in inbox\)$/m);
  t.regex(text, /^ {4}firstName: Amanda → Noelle$/m);
  t.regex(text, /^ {4}vmPin: \[secret\] → \[secret\]$/m);
  t.regex(text, /^\+ create 201 Bo \(new in inbox\)$/m);
  t.regex(text, /^! conflict 300 Cy \(extension 300 is held by user Amanda Camden managed for inbox\/gone/m);
  t.false(text.includes(PIN));
});

test('the mapping rule of each changed field: after the field line in formatPlan, per source in summaryJson (DESIGN §6.7)', (t) => {
  const rules = { firstName: 'mappings/hr.yml#fields.firstName', vmPin: 'mappings/hr.yml#voicemail.pin' };
  const p = planOf({
    users: [pbxUser({ vmPin: '8264' })],
    bindings: [binding('a1', 'u200', '200')],
    sources: [read({ rules, desired: [desired({ anchor: 'a1', extension: fixed('200'), fields: { firstName: 'Noelle', vmPin: '5555' } })] })],
  });
  const text = formatPlan(p);
  t.regex(text, /^ {4}firstName: Amanda → Noelle {3}\[mappings\/hr\.yml#fields\.firstName\]$/m);
  t.regex(text, /^ {4}vmPin: \[secret\] → \[secret\] {3}\[mappings\/hr\.yml#voicemail\.pin\]$/m);
  t.deepEqual(summaryJson(p).rules, { inbox: rules });
  t.deepEqual(summaryJson(samplePlan()).rules, {}, 'a source read without a mapping names no rules');
});

test('formatPlan lists the rejected rows in input order: the planner\'s issue at line 3 before the reader\'s at line 7, a file-level one first; summaryJson keeps the plan\'s order', (t) => {
  const file = '/srv/inbox/staff.csv';
  const p = planOf({
    sources: [
      read({
        issues: [
          { source: 'inbox', file, line: 7, field: 'VMPIN', record: '1007', message: 'VM PIN must be at least 4 digits' },
          { source: 'inbox', file, message: 'the file has no column DID' },
        ],
        desired: [desired({ anchor: '911', extension: fixed('911'), line: 3, origin: { file, line: 3 } })],
      }),
    ],
  });
  t.deepEqual(p.issues.map((i) => i.line), [7, undefined, 3], 'the reader\'s issues, then the planner\'s');
  const errors = formatPlan(p).split('\n').filter((l) => l.startsWith('? error'));
  t.deepEqual(errors, [
    `? error inbox ${file}: the file has no column DID`,
    `? error inbox ${file}:3 extension: extension 911 is an emergency number and can never be an extension; inbox/911 is not created`,
    `? error inbox ${file}:7 VMPIN: VM PIN must be at least 4 digits`,
  ]);
  t.deepEqual(summaryJson(p).issues.map((i) => i.line), [7, undefined, 3]);
  t.is(summaryJson(p).summary.errors, 3);
});

test('inInputOrder: grouped by source and file in order of appearance, then by line, line-less first; stable', (t) => {
  const items = [
    { source: 'hr', file: 'b.csv', line: 9, id: 'b9' },
    { source: 'hr', file: 'a.csv', line: 4, id: 'a4' },
    { source: 'hr', file: 'b.csv', line: 2, id: 'b2' },
    { source: 'ldap', id: 'l' },
    { source: 'hr', file: 'a.csv', id: 'a-file' },
    { source: 'hr', file: 'a.csv', line: 4, id: 'a4-second' },
  ];
  t.deepEqual(inInputOrder(items, (x) => x).map((x) => x.id), ['b2', 'b9', 'a-file', 'a4', 'a4-second', 'l']);
});
