import test from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import { makeWorkspace, person, threeCxCsv } from '../helpers/workspace.js';

test('explain shows the binding and every mapping decision with its rule, by extension, anchor or e-mail', async (t) => {
  const ws = await makeWorkspace();
  const file = await ws.write('staff.csv', threeCxCsv([person(1001, 'Anna', 'Smith', { Role: 'System Owner', Department: 'Sales', VMPIN: '7391' })]));
  t.is((await ws.cli(['import', file])).code, 0);

  for (const id of ['1001', 'anna.smith@example.com']) {
    const r = await ws.cli(['explain', id, '--file', file, '--json']);
    t.is(r.code, 0, r.stderr);
    const data = JSON.parse(r.stdout);
    t.is(data.binding.extension, '1001');
    t.is(data.verdict, 'user');
    const decisions = data.decisions as Array<{ field: string; value?: unknown; rule: string }>;
    const role = decisions.find((d) => d.field === 'role')!;
    t.is(role.value, 'system_owners');
    t.regex(role.rule, /3cx-csv\.yml#role/);
    t.truthy(decisions.find((d) => d.field === 'department' && d.value === 'Sales'));
    t.false(r.stdout.includes('7391'), 'the VM PIN is masked');
  }
  const text = await ws.cli(['explain', '1001', '--file', file]);
  t.regex(text.stdout, /binding: inbox\/1001 → extension 1001/);
  t.regex(text.stdout, /role = "system_owners"/);

  const unknown = await ws.cli(['explain', '4242', '--file', file]);
  t.is(unknown.code, 1);
  // A --file that names nothing readable is the admin's mistake (exit 2), not "no source record found".
  const wrong = await ws.cli(['explain', '1001', '--file', path.join(ws.dir, 'nope.csv')]);
  t.is(wrong.code, 2);
  t.regex(wrong.stderr, /^pbxsync: --file \S+nope\.csv does not exist$/m);
});

test('explain without --file finds the record in the input applied last, also when it is in no processed/ folder', async (t) => {
  const ws = await makeWorkspace();
  const file = await ws.write('admin/staff.csv', threeCxCsv([person(1001, 'Anna', 'Smith', { Department: 'Sales' })]));
  t.is((await ws.cli(['import', file])).code, 0);
  await fs.rm(file);
  const r = await ws.cli(['explain', 'anna.smith@example.com', '--json']);
  t.is(r.code, 0, r.stderr);
  const data = JSON.parse(r.stdout);
  t.is(data.verdict, 'user');
  t.is(data.source.origin.file, path.join(ws.stateDir, 'last-applied', 'inbox.csv'));
  t.truthy((data.decisions as Array<{ field: string; value?: unknown }>).find((d) => d.field === 'department' && d.value === 'Sales'));
});

test('welcome re-sends the account mail to a user', async (t) => {
  const ws = await makeWorkspace();
  const file = await ws.write('staff.csv', threeCxCsv([person(1001, 'Anna', 'Smith')]));
  t.is((await ws.cli(['import', file])).code, 0);
  const outbox = path.join(ws.stateDir, 'outbox');
  const before = (await fs.readdir(outbox)).filter((n) => n.endsWith('.eml')).length;
  t.is(before, 1);
  const r = await ws.cli(['welcome', '1001']);
  t.is(r.code, 0, r.stderr);
  const mails = (await fs.readdir(outbox)).filter((n) => n.endsWith('.eml'));
  t.is(mails.length, 2);
  const last = await fs.readFile(path.join(outbox, mails.sort().pop()!), 'utf8');
  t.regex(last, /^To: Anna Smith <anna\.smith@example\.com>/m);
  t.is((await ws.cli(['welcome', '9999'])).code, 2);
});
