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

  // An id that names nothing is the admin's to correct (exit 2, as `welcome 9999`), said on stderr.
  const unknown = await ws.cli(['explain', '4242', '--file', file]);
  t.is(unknown.code, 2);
  t.regex(unknown.stderr, /^pbxsync: nothing known about 4242: no binding, no PBX user with that extension or e-mail, and no source record in \S+staff\.csv$/m);
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

test('explain without --file: what pbxsync knows, found by e-mail, extension or anchor (managing source, anchor, why the extension, role, department, disabled since, last run)', async (t) => {
  const ws = await makeWorkspace({ safety: 'safety: { maxDisablePercent: 100, maxDisables: 10, minSourceRatio: 0.5, removal: { action: disable, graceDays: 30 } }' });
  const first = await ws.write('first.csv', threeCxCsv([person(1001, 'Anna', 'Smith', { Role: 'System Owner', Department: 'Sales' }), person('', 'Bob', 'Stone')]));
  const created = await ws.cli(['import', first, '--json']);
  t.is(created.code, 0, created.stderr);
  const createRun = JSON.parse(created.stdout).runId as string;
  const explain = async (id: string) => {
    const r = await ws.cli(['explain', id, '--json']);
    t.is(r.code, 0, r.stderr);
    return JSON.parse(r.stdout);
  };

  // Anna is anchored by her Number; her e-mail finds her all the same (it said "not managed" before).
  for (const id of ['anna.smith@example.com', 'ANNA.SMITH@example.com', '1001', 'inbox/1001']) {
    const anna = await explain(id);
    t.deepEqual(anna.managedBy, { source: 'inbox', anchor: '1001' }, id);
    t.like(anna.user, { extension: '1001', role: 'system_owners', department: 'Sales', enabled: true });
    t.is(anna.lastChange.runId, createRun);
    t.is(anna.lastChange.op, 'create');
  }
  // Bob had no Number: anchored by his e-mail, his extension allocated.
  const text = await ws.cli(['explain', '1000']);
  t.is(text.code, 0, text.stderr);
  t.regex(text.stdout, /^binding: inbox\/bob\.stone@example\.com → extension 1000 /m);
  t.regex(text.stdout, /^managed by source inbox \(csv, mapping \S+3cx-csv\.yml\), anchor bob\.stone@example\.com$/m);
  t.regex(text.stdout, new RegExp(`^extension 1000: allocated from 1000-1999 \\(the next free number\\) by run ${createRun} on .+; sticky: bound to inbox/bob\\.stone@example\\.com since `, 'm'));
  t.regex(text.stdout, /^PBX user: 1000 Bob Stone <bob\.stone@example\.com>, role users, department DEFAULT, enabled$/m);

  // In his export Bob's row has its Number: it is still his record (the mapping decisions come with it).
  const exportFile = path.join(ws.dir, 'export.csv');
  t.is((await ws.cli(['export', '--out', exportFile])).code, 0);
  const withRecord = await ws.cli(['explain', 'bob.stone@example.com', '--file', exportFile, '--json']);
  t.is(withRecord.code, 0, withRecord.stderr);
  const bobRecord = JSON.parse(withRecord.stdout);
  t.like(bobRecord, { managedBy: { anchor: 'bob.stone@example.com' }, source: { name: 'inbox', anchor: '1000' }, verdict: 'user' });
  t.truthy((bobRecord.decisions as Array<{ field: string; value?: unknown }>).find((d) => d.field === 'extension' && d.value === '1000'));

  // Disabled by a later file (Disabled=1, still no Number): since that run, which is also the last to touch him.
  const second = await ws.write('second.csv', threeCxCsv([person('', 'Bob', 'Stone', { Disabled: '1' })]));
  const disabled = await ws.cli(['import', second, '--json']);
  t.is(disabled.code, 0, disabled.stderr);
  const disableRun = JSON.parse(disabled.stdout).runId as string;
  const bob = await explain('bob.stone@example.com');
  t.like(bob, { managedBy: { source: 'inbox', anchor: 'bob.stone@example.com' }, user: { extension: '1000', enabled: false } });
  t.is(bob.lastChange.runId, disableRun);
  t.is(bob.lastChange.op, 'disable');
  t.is(bob.created.runId, createRun);
  t.is(typeof bob.disabledSince, 'string');
  const bobText = await ws.cli(['explain', 'bob.stone@example.com']);
  t.regex(bobText.stdout, new RegExp(`, disabled since \\S+ by run ${disableRun} \\(marked disabled in inbox`));
  t.regex(bobText.stdout, new RegExp(`^last change: run ${disableRun} on \\S+: disable of enabled`, 'm'));

  // An id pbxsync knows nothing of: exit 2 with the reason, on stderr or as the JSON error.
  const unknown = await ws.cli(['explain', 'nobody@example.com']);
  t.is(unknown.code, 2);
  t.regex(unknown.stderr, /^pbxsync: nothing known about nobody@example\.com: no binding, no PBX user with that extension or e-mail, and no source record in the processed files/m);
  const json = await ws.cli(['explain', '4242', '--json']);
  t.is(json.code, 2);
  t.regex(JSON.parse(json.stdout).error, /^nothing known about 4242/);
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
