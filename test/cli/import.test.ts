import test from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import { ROOT, makeWorkspace, person, threeCxCsv } from '../helpers/workspace.js';

interface Summary {
  runId: string;
  summary: Record<string, number>;
  held: string | null;
  operations: Array<{ kind: string; extension: string; fields?: string[]; before?: Record<string, unknown>; after?: Record<string, unknown> }>;
  rules: Record<string, Record<string, string>>;
}

function json(stdout: string): Summary {
  return JSON.parse(stdout.trim().split('\n').pop()!) as Summary;
}

async function exported(ws: Awaited<ReturnType<typeof makeWorkspace>>): Promise<Array<Record<string, unknown>>> {
  const out = await ws.cli(['export', '--format', 'json']);
  if (out.code !== 0) throw new Error(`export failed: ${out.stderr}`);
  return JSON.parse(out.stdout) as Array<Record<string, unknown>>;
}

test('seed "update user information": 200 Amanda Camden becomes Noelle Melton → one update, extension and phones unchanged', async (t) => {
  const ws = await makeWorkspace();
  const first = await ws.write(
    'week1.csv',
    threeCxCsv([
      person(200, 'Amanda', 'Camden', { EmailAddress: 'amanda@woodingtonproperties.com', OutboundCallerID: '18123339201', MAC: '80:5E:C0:11:22:33', Model: 'Yealink T29G', Template: 'yealinkT2x.ph.xml' }),
      person(201, 'Kim', 'Killion', { EmailAddress: 'kim@woodingtonproperties.com' }),
    ]),
  );
  const r1 = await ws.cli(['import', first, '--json']);
  t.is(r1.code, 0, r1.stderr);
  t.is(json(r1.stdout).summary.create, 2);

  const before = (await exported(ws)).find((u) => u.extension === '200')!;
  const second = await ws.write(
    'week2.csv',
    threeCxCsv([
      person(200, 'Noelle', 'Melton', { EmailAddress: 'noelle@woodingtonproperties.com', OutboundCallerID: '18123339201', MAC: '80:5E:C0:11:22:33', Model: 'Yealink T29G', Template: 'yealinkT2x.ph.xml' }),
      person(201, 'Kim', 'Killion', { EmailAddress: 'kim@woodingtonproperties.com' }),
    ]),
  );
  const r2 = await ws.cli(['import', second, '--json']);
  t.is(r2.code, 0, r2.stderr);
  const s2 = json(r2.stdout);
  t.is(s2.summary.update, 1);
  t.is(s2.summary.create, 0);
  t.is(s2.summary.delete + s2.summary.disable, 0);
  t.is(s2.summary.unchanged, 1);
  const update = s2.operations.find((o) => o.kind === 'update')!;
  t.is(update.extension, '200');
  t.deepEqual([...(update.fields ?? [])].sort(), ['email', 'firstName', 'lastName']);
  t.is(update.before?.firstName, 'Amanda');
  t.is(update.after?.firstName, 'Noelle');
  // Which source record and which mapping rule each change follows (DESIGN §6.7).
  t.deepEqual(
    Object.fromEntries((update.fields ?? []).map((f) => [f, s2.rules.inbox?.[f]])),
    { firstName: `${ROOT}/mappings/3cx-csv.yml#fields.firstName`, lastName: `${ROOT}/mappings/3cx-csv.yml#fields.lastName`, email: `${ROOT}/mappings/3cx-csv.yml#fields.email` },
  );

  const after = (await exported(ws)).find((u) => u.extension === '200')!;
  t.is(after.firstName, 'Noelle');
  t.is(after.lastName, 'Melton');
  t.is(after.email, 'noelle@woodingtonproperties.com');
  t.is(after.id, before.id, 'the same PBX user, not a new one');
  t.deepEqual(after.phones, before.phones);
  t.deepEqual(after.phones, [{ mac: '805ec0112233', model: 'Yealink T29G', template: 'yealinkT2x.ph.xml' }]);
});

test('rows with emergency numbers, a duplicate extension, a short VM PIN or a bad e-mail are rejected with a reason; the rest applies (exit 4)', async (t) => {
  const ws = await makeWorkspace();
  const rows = [
    person(1001, 'Anna', 'Smith'), // line 2
    person(911, 'Nine', 'One'), // 3
    person(112, 'One', 'Twelve'), // 4
    person(15, 'Fif', 'Teen'), // 5
    person(17, 'Seven', 'Teen'), // 6
    person(18, 'Eigh', 'Teen'), // 7
    person(1002, 'Bob', 'Stone'), // 8
    person(1002, 'Bobby', 'Twice'), // 9: duplicate extension
    person(1003, 'Carla', 'Pin', { VMPIN: '12' }), // 10
    person(1004, 'Dan', 'Mail', { EmailAddress: 'dan@' }), // 11
    person(1005, 'Eve', 'Good', { VMPIN: '2580' }), // 12
  ];
  const file = await ws.write('mixed.csv', threeCxCsv(rows));
  const r = await ws.cli(['import', file]);
  t.is(r.code, 4, r.stdout + r.stderr);
  const out = r.stdout;
  for (const line of [3, 4, 5, 6, 7]) t.regex(out, new RegExp(`mixed\\.csv:${line}\\b.*emergency`, 'i'), `line ${line}`);
  t.regex(out, /mixed\.csv:9\b.*1002/i);
  t.regex(out, /mixed\.csv:10\b.*VMPIN.*4 digits/i);
  t.regex(out, /mixed\.csv:11\b.*EmailAddress/i);

  const users = await exported(ws);
  t.deepEqual(users.map((u) => u.extension).sort(), ['1001', '1002', '1005']);
  t.is(users.find((u) => u.extension === '1002')!.firstName, 'Bob', 'the first occurrence wins, the duplicate is rejected');
  t.false(JSON.stringify(users).includes('2580'), 'VM PINs are never exported');
});

test('the same import twice: the second run plans nothing and leaves the store file untouched', async (t) => {
  const ws = await makeWorkspace();
  const file = await ws.write('staff.csv', threeCxCsv([person(1001, 'Anna', 'Smith', { MobileNumber: '+1 415 555 0101', DID: '+14155550100' }), person(1002, 'Bob', 'Stone', { Department: 'Sales', Role: '<rolename="managers"/>' })]));
  const r1 = await ws.cli(['import', file, '--json']);
  t.is(r1.code, 0, r1.stderr);
  const store = path.join(ws.stateDir, 'pbx.json');
  const stat1 = await fs.stat(store);
  const text1 = await fs.readFile(store, 'utf8');
  const journal1 = await fs.readFile(`${store}.journal`, 'utf8').catch(() => null);
  const r2 = await ws.cli(['import', file, '--json']);
  t.is(r2.code, 0, r2.stderr);
  const s2 = json(r2.stdout).summary;
  t.deepEqual({ ...s2, unchanged: 0 }, { create: 0, update: 0, disable: 0, enable: 0, delete: 0, adopt: 0, unchanged: 0, conflicts: 0, errors: 0 });
  t.is(s2.unchanged, 2);
  const stat2 = await fs.stat(store);
  t.is(stat2.mtimeMs, stat1.mtimeMs, 'store not rewritten');
  t.is(await fs.readFile(store, 'utf8'), text1);
  t.is(await fs.readFile(`${store}.journal`, 'utf8').catch(() => null), journal1, 'store journal untouched');
});

test('validate reports a broken mapping reference with file, line and path (exit 2)', async (t) => {
  const ws = await makeWorkspace({ mapping: '/nonexistent/mapping.yml' });
  const r = await ws.cli(['validate']);
  t.is(r.code, 2);
  t.regex(r.stderr, /service\.yml:\d+/);
  t.regex(r.stderr, /mapping/);
});

test('a mapping that does not compile: import exits 2, each problem printed once, the run recorded with exit 2 for status', async (t) => {
  const ws0 = await makeWorkspace();
  const shipped = await fs.readFile(path.join(ROOT, 'mappings/3cx-csv.yml'), 'utf8');
  const broken = shipped.replace('  create: true\n', '  create: maybe\n').replace('  default: users\n', '  default: 7\n');
  const createLine = broken.split('\n').indexOf('  create: maybe') + 1;
  const mapping = await ws0.write('mapping.yml', broken);
  const ws = await makeWorkspace({ mapping });
  const file = await ws.write('a.csv', threeCxCsv([person(1001, 'Anna', 'Smith')]));
  const r = await ws.cli(['import', file]);
  t.is(r.code, 2, r.stderr);
  const problems = r.stderr.split('\n').filter((l) => /mapping\.yml:\d+:\d+: /.test(l));
  t.deepEqual(
    problems.map((l) => l.replace(/^.*mapping\.yml:\d+:\d+: /, '')).sort(),
    [
      'department.create: must be boolean',
      'role.default: must be one of: users, receptionists, group_admins, managers, group_owners, system_admins, system_owners',
      'role.default: must be string',
    ],
    r.stderr,
  );

  const status = JSON.parse((await ws.cli(['status', '--json'])).stdout) as { runs: Array<{ exitCode: number; error?: string }> };
  t.is(status.runs[0]?.exitCode, 2);
  t.regex(status.runs[0]?.error ?? '', /mapping .*mapping\.yml has 3 problems/);
  const text = (await ws.cli(['status'])).stdout;
  t.regex(text, new RegExp(String.raw`^source inbox \(csv\): FAILING at \S+: mapping \S+mapping\.yml has 3 problems:\n {2}\S+mapping\.yml:${createLine}:11: department\.create: must be boolean$`, 'm'), text);
});

test('import of a folder, a missing file or an unreadable one is a usage error (exit 2): no run recorded, the source not marked failing', async (t) => {
  const ws = await makeWorkspace();
  const cases: Array<[string, RegExp]> = [
    [ws.inbox, /^pbxsync: import: \S+inbox is a folder; name a CSV file\n$/],
    [path.join(ws.dir, 'nope.csv'), /^pbxsync: import: \S+nope\.csv does not exist\n$/],
    [path.join(ws.config, 'x.csv'), /^pbxsync: import: \S+service\.yml\/x\.csv does not exist\n$/],
  ];
  if (process.getuid?.() !== 0) {
    // (root reads files whatever their mode)
    const locked = await ws.write('locked.csv', threeCxCsv([person(1001, 'Anna', 'Smith')]));
    await fs.chmod(locked, 0o000);
    cases.push([locked, /^pbxsync: import: \S+locked\.csv cannot be read \(EACCES\)\n$/]);
  }
  for (const [file, message] of cases) {
    const r = await ws.cli(['import', file]);
    t.is(r.code, 2, r.stderr);
    t.regex(r.stderr, message);
  }
  const status = JSON.parse((await ws.cli(['status', '--json'])).stdout) as { sources: Array<{ health?: unknown }>; runs: unknown[] };
  t.is(status.sources[0]!.health, undefined, 'the source never ran');
  t.deepEqual(status.runs, []);
  t.regex((await ws.cli(['status'])).stdout, /^source inbox \(csv\): never ran$/m);
});

test('import of a text file that is no 3CX CSV: the header problem names the missing required column and, apart, the key it needs (exit 4, run recorded)', async (t) => {
  const ws = await makeWorkspace();
  const notes = await ws.write('notes.txt', 'Meeting notes\nbring the phones\n');
  const r = await ws.cli(['import', notes, '--json']);
  t.is(r.code, 4, r.stdout + r.stderr);
  const issues = (JSON.parse(r.stdout.trim().split('\n').pop()!) as { issues: Array<{ field?: string; message: string }> }).issues;
  t.is(issues.length, 1, JSON.stringify(issues));
  t.is(issues[0]!.field, 'FirstName');
  t.is(
    issues[0]!.message,
    'the header has no column FirstName (required), and no key column: one of Number or EmailAddress is needed to recognise each row; nothing was read',
  );
  t.notRegex(r.stdout, /FirstName \(key column\)/);
  const status = JSON.parse((await ws.cli(['status', '--json'])).stdout) as { runs: Array<{ exitCode: number }> };
  t.like(status.runs, [{ exitCode: 4 }]);
});

test('import FILE, then the nightly full run: the import stays, not the newest file in processed/; the file may even be gone', async (t) => {
  const ws = await makeWorkspace();
  // What the daemon applied earlier and moved to processed/.
  const monday = await ws.write('inbox/monday.csv', threeCxCsv([person(1001, 'Anna', 'Smith'), person(1002, 'Bob', 'Stone')]));
  t.is((await ws.cli(['import', monday])).code, 0);
  await fs.mkdir(path.join(ws.inbox, 'processed'));
  await fs.rename(monday, path.join(ws.inbox, 'processed', 'monday.csv'));

  // The admin fixes a name with a one-shot import of a file kept in their own folder, then tidies it away.
  const fix = await ws.write('admin/fix.csv', threeCxCsv([person(1001, 'Annabel', 'Smith')]));
  const imported = await ws.cli(['import', fix, '--json']);
  t.is(imported.code, 0, imported.stderr);
  t.is(json(imported.stdout).summary.update, 1);
  await fs.rm(fix);
  const status = JSON.parse((await ws.cli(['status', '--json'])).stdout) as { sources: Array<{ lastApplied?: { file: string; runId: string } }> };
  t.like(status.sources[0]?.lastApplied, { file: fix, runId: json(imported.stdout).runId });
  t.regex((await ws.cli(['status'])).stdout, /^ {2}applied last: \S+fix\.csv \(run \S+ at \S+\); the nightly full run re-applies it$/m);

  const night = await ws.cli(['sync', '--full', '--json']);
  t.is(night.code, 0, night.stderr);
  const { unchanged, ...counts } = json(night.stdout).summary;
  t.deepEqual(counts, { create: 0, update: 0, disable: 0, enable: 0, delete: 0, adopt: 0, conflicts: 0, errors: 0 });
  t.is(unchanged, 1, 'compared with the one row of fix.csv');
  t.regex(night.stdout, /inbox: compared with fix\.csv, the input applied last/);
  const names = (await exported(ws)).map((u) => [u.extension, u.firstName]);
  t.deepEqual(names.sort(), [['1001', 'Annabel'], ['1002', 'Bob']]);
});

test('a file with fewer columns changes only what it has: role, department, phones, numbers and voicemail stay; a new user gets the defaults', async (t) => {
  const ws = await makeWorkspace();
  const full = await ws.write(
    'full.csv',
    threeCxCsv([
      person(200, 'Amanda', 'Camden', {
        EmailAddress: 'amanda@example.com',
        MobileNumber: '+442079460958',
        OutboundCallerID: '+12125550100',
        DID: '+12125550100',
        Role: '<rolename="system_owners"/>',
        Department: 'Sales',
        MAC: '00:15:65:11:22:33',
        Model: 'T46S',
        Template: 'yealink_t4x',
        VMEnable: '0',
      }),
    ]),
  );
  t.is((await ws.cli(['import', full, '--json'])).code, 0);
  const before = (await exported(ws)).find((u) => u.extension === '200')!;
  t.is(before.role, 'system_owners');
  t.is(before.department, 'Sales');

  const few = await ws.write(
    'few.csv',
    threeCxCsv([person(200, 'Noelle', 'Melton', { EmailAddress: 'noelle@example.com' }), person(202, 'Pat', 'New', { EmailAddress: 'pat@example.com' })], ['Number', 'FirstName', 'LastName', 'EmailAddress']),
  );
  const r = await ws.cli(['import', few, '--json']);
  t.is(r.code, 0, r.stderr);
  const s = json(r.stdout);
  t.is(s.summary.update, 1);
  t.is(s.summary.create, 1);
  t.deepEqual([...(s.operations.find((o) => o.kind === 'update')!.fields ?? [])].sort(), ['email', 'firstName', 'lastName']);

  const users = await exported(ws);
  const noelle = users.find((u) => u.extension === '200')!;
  for (const field of ['role', 'department', 'phones', 'mobile', 'outboundCallerId', 'dids', 'vmEnabled'] as const) {
    t.deepEqual(noelle[field], before[field], `${field} kept`);
  }
  t.is(noelle.firstName, 'Noelle');
  t.is(noelle.email, 'noelle@example.com');
  const pat = users.find((u) => u.extension === '202')!;
  t.is(pat.role, 'users');
  t.is(pat.department, 'DEFAULT');
  t.is(pat.vmEnabled, true);
  t.deepEqual(pat.phones, []);

  // The same file again: nothing to do. A MAC column that is there but empty does remove the phone.
  const again = json((await ws.cli(['import', few, '--json'])).stdout);
  t.is(again.summary.update + again.summary.create, 0);
  const emptied = await ws.write('emptied.csv', threeCxCsv([person(200, 'Noelle', 'Melton', { EmailAddress: 'noelle@example.com', MAC: '' })], ['Number', 'FirstName', 'LastName', 'EmailAddress', 'MAC']));
  const e = json((await ws.cli(['import', emptied, '--json'])).stdout);
  t.deepEqual(e.operations.find((o) => o.kind === 'update')?.fields, ['phones']);
  t.deepEqual((await exported(ws)).find((u) => u.extension === '200')!.phones, []);
});
