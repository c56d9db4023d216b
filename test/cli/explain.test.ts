import test from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import { ROOT, makeWorkspace, person, threeCxCsv } from '../helpers/workspace.js';

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

/**
 * Two CSV sources with their own folders: `a` maps with a copy of the shipped mapping whose department default
 * is Sales, `b` with the shipped one (default DEFAULT), so the decisions say whose mapping read the record.
 */
async function twoSourceWorkspace() {
  const ws = await makeWorkspace();
  const shipped = await fs.readFile(path.join(ROOT, 'mappings/3cx-csv.yml'), 'utf8');
  t_assert(shipped.includes('  default: DEFAULT\n'));
  const mapS = await ws.write('mapS.yml', shipped.replace('  default: DEFAULT\n', '  default: Sales\n'));
  const config = await fs.readFile(ws.config, 'utf8');
  const sources = `sources:
  - name: a
    type: csv
    mapping: ${JSON.stringify(mapS)}
    csv: { folder: inA, stableMs: 300 }
  - name: b
    type: csv
    mapping: ${JSON.stringify(path.join(ROOT, 'mappings/3cx-csv.yml'))}
    csv: { folder: inB, stableMs: 300 }
`;
  await fs.writeFile(ws.config, config.replace(/^sources:\n(?: {2}.*\n| {4}.*\n)+/m, sources));
  const bText = 'Number,FirstName,LastName,EmailAddress\r\n3001,Al,A,al@example.com\r\n3002,Bea,B,alice@example.com\r\n';
  return { ws, bText };
}

function t_assert(ok: boolean): void {
  if (!ok) throw new Error('the shipped mapping changed: update twoSourceWorkspace');
}

type Decisions = Array<{ field: string; value?: unknown; rule: string }>;

test('explain --file with two CSV sources: the record is read as the input of the source the id prefix, --source or the file\'s folder names, with its mapping', async (t) => {
  const { ws, bText } = await twoSourceWorkspace();
  const bFile = await ws.write('b.csv', bText);
  const inB = await ws.write('inB/processed/r.csv', bText);

  const asB = async (args: string[]) => {
    const r = await ws.cli(['explain', ...args, '--json']);
    t.is(r.code, 0, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    const data = JSON.parse(r.stdout) as { source: { name: string; anchor: string; origin: { file: string; line: number } }; decisions: Decisions };
    t.like(data.source, { name: 'b', anchor: '3002', origin: { line: 3 } }, args.join(' '));
    const department = data.decisions.find((d) => d.field === 'department')!;
    t.is(department.value, 'DEFAULT', args.join(' '));
    t.regex(department.rule, /mappings\/3cx-csv\.yml#department/, args.join(' '));
    return data;
  };
  // The source/ prefix of the id.
  t.is((await asB(['b/3002', '--file', bFile])).source.origin.file, bFile);
  // --source.
  await asB(['3002', '--file', bFile, '--source', 'b']);
  await asB(['alice@example.com', '--file', bFile, '--source', 'b']);
  // The folder of b that holds the file (its processed/), without anything else saying so.
  t.is((await asB(['3002', '--file', inB])).source.origin.file, inB);
  // Its inbox, failed/ and the watcher's staging folder too.
  for (const where of ['inB/r.csv', 'inB/failed/r.csv', 'inB/.pbxsync-processing/0001/r.csv']) await asB(['3002', '--file', await ws.write(where, bText)]);

  // The same file as an input of a: a's mapping decides (department default Sales).
  const asA = await ws.cli(['explain', '3002', '--file', bFile, '--source', 'a']);
  t.is(asA.code, 0, asA.stderr);
  t.regex(asA.stdout, /^source record: a 3002 \(\S+b\.csv:3\)$/m);
  t.regex(asA.stdout, /^ {2}department = "Sales" — .*mapS\.yml#department\.default\]$/m);

  // Nothing says whose file b.csv is: exit 2, naming the sources and --source.
  const ambiguous = await ws.cli(['explain', '3002', '--file', bFile]);
  t.is(ambiguous.code, 2, ambiguous.stdout + ambiguous.stderr);
  t.regex(ambiguous.stderr, /^pbxsync: \S+b\.csv could be the input of several CSV sources \(a, b\), and 3002 names no user one of them manages: name the source with --source NAME \(or explain SOURCE\/3002\)$/m);
  t.is(ambiguous.stdout, '');

  // Contradictions and unknown names are usage errors.
  const unknown = await ws.cli(['explain', '3002', '--file', bFile, '--source', 'c']);
  t.is(unknown.code, 2);
  t.regex(unknown.stderr, /^pbxsync: --source c: no source of that name in \S+service\.yml \(the sources are a, b\)$/m);
  const both = await ws.cli(['explain', 'a/3002', '--file', bFile, '--source', 'b']);
  t.is(both.code, 2);
  t.regex(both.stderr, /^pbxsync: a\/3002 names source a, --source names b; give one of them$/m);

  // A record that is not in the file, read as b's: said with the source it was read as.
  const missing = await ws.cli(['explain', 'b/4242', '--file', bFile]);
  t.is(missing.code, 2);
  t.regex(missing.stderr, /^pbxsync: nothing known about b\/4242: .* no source record in \S+b\.csv \(read as an input of source b\)$/m);
});

test('explain --file with two CSV sources: an id naming a user b manages reads the file as b\'s', async (t) => {
  const { ws, bText } = await twoSourceWorkspace();
  const bFile = await ws.write('b.csv', bText);
  const imported = await ws.cli(['import', bFile, '--source', 'b']);
  t.is(imported.code, 0, imported.stdout + imported.stderr);
  for (const id of ['3002', 'alice@example.com']) {
    const r = await ws.cli(['explain', id, '--file', bFile, '--json']);
    t.is(r.code, 0, r.stderr);
    const data = JSON.parse(r.stdout) as { managedBy: { source: string }; source: { name: string; anchor: string }; decisions: Decisions };
    t.like(data, { managedBy: { source: 'b' }, source: { name: 'b', anchor: '3002' } }, id);
    t.is(data.decisions.find((d) => d.field === 'department')?.value, 'DEFAULT', id);
  }
});
