import test, { type ExecutionContext } from 'ava';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TerminalError } from '../../src/errors/index.js';
import { apply } from '../../src/reconcile/apply.js';
import { AuditLog, auditEntry, type AuditEntry } from '../../src/reconcile/audit.js';
import { Journal } from '../../src/reconcile/journal.js';
import { plan } from '../../src/reconcile/plan.js';
import type { Operation, Plan } from '../../src/reconcile/types.js';
import { StateStore } from '../../src/state/store.js';
import { captureLogger } from '../daemon/_logger.js';
import { MemoryTarget } from './_memoryTarget.js';
import { NOW, NUMBERING, SAFETY, binding, desired, fixed, pbxUser, read } from './_builders.js';

const AT = '2026-12-05T08:00:00.000Z';
const RULES = { firstName: 'mappings/hr.yml#fields.firstName', vmPin: 'mappings/hr.yml#voicemail.pin', email: 'mappings/hr.yml#fields.email' };
const PLAN = { runId: 'r1', sources: [{ source: 'hr', rules: RULES, mappingFile: 'mappings/hr.yml' }] } as unknown as Plan;
const key = { source: 'hr', anchor: 'e42' };
const origin = { file: '/srv/inbox/staff.csv', line: 7 };

/** As written to the file: properties that do not apply are left out. */
const written = (e: AuditEntry) => JSON.parse(JSON.stringify(e)) as Record<string, unknown>;

const table: Array<[string, Operation, { userId?: string; error?: string }, Record<string, unknown>]> = [
  [
    'a create names its source record and mapping file',
    { id: 'create:hr/e42', kind: 'create', key, extension: '1042', after: { firstName: 'Ann', vmPin: '5555' }, fields: ['firstName', 'vmPin'], reason: 'new in hr (/srv/inbox/staff.csv, line 7)', origin },
    { userId: 'u1' },
    { at: AT, runId: 'r1', result: 'applied', op: 'create', extension: '1042', userId: 'u1', source: 'hr', anchor: 'e42', record: '/srv/inbox/staff.csv:7', reason: 'new in hr (/srv/inbox/staff.csv, line 7)', mapping: 'mappings/hr.yml' },
  ],
  [
    'an update lists each changed field with its values (secrets masked) and its rule',
    { id: 'update:hr/e42', kind: 'update', key, userId: 'u1', extension: '1042', before: { firstName: 'Ann', vmPin: '1111' }, after: { firstName: 'Anne', vmPin: '2222' }, fields: ['firstName', 'vmPin'], reason: 'first name and voicemail PIN changed in hr', origin },
    {},
    {
      at: AT, runId: 'r1', result: 'applied', op: 'update', extension: '1042', userId: 'u1', source: 'hr', anchor: 'e42', record: '/srv/inbox/staff.csv:7', reason: 'first name and voicemail PIN changed in hr',
      fields: ['firstName', 'vmPin'], before: { firstName: 'Ann', vmPin: '[secret]' }, after: { firstName: 'Anne', vmPin: '[secret]' }, rules: { firstName: RULES.firstName, vmPin: RULES.vmPin },
    },
  ],
  [
    'a disable (the removal policy, no mapping rule) and a refused write with its error',
    { id: 'disable:hr/e42', kind: 'disable', key, userId: 'u1', extension: '1042', before: { enabled: true }, after: { enabled: false }, fields: ['enabled'], reason: 'absent from a complete read of hr' },
    { error: 'disable 1042: the PBX is read-only' },
    {
      at: AT, runId: 'r1', result: 'failed', op: 'disable', extension: '1042', userId: 'u1', source: 'hr', anchor: 'e42', reason: 'absent from a complete read of hr',
      fields: ['enabled'], before: { enabled: true }, after: { enabled: false }, error: 'disable 1042: the PBX is read-only',
    },
  ],
];
for (const [name, op, outcome, expected] of table) {
  test(`auditEntry: ${name}`, (t) => {
    t.deepEqual(written(auditEntry(PLAN, op, { at: AT, ...outcome })), expected);
  });
}

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'pbxsync-audit-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('AuditLog: appends a line per entry to the month of its time (UTC)', async (t) => {
  const dir = path.join(await tempDir(t), 'audit');
  const log = new AuditLog(dir);
  const entry = (at: string, extension: string) => auditEntry(PLAN, { id: 'x', kind: 'create', extension, reason: 'new' }, { at });
  await log.append([entry('2026-11-30T23:59:59.000Z', '1'), entry('2026-11-30T23:59:59.500Z', '2')]);
  await log.append([entry('2026-12-01T00:00:01.000Z', '3')]);
  await log.append([]);
  t.deepEqual((await readdir(dir)).sort(), ['2026-11.jsonl', '2026-12.jsonl']);
  const lines = (await readFile(path.join(dir, '2026-11.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { extension: string });
  t.deepEqual(lines.map((l) => l.extension), ['1', '2']);
});

async function applied(t: ExecutionContext, audit: AuditLog) {
  const dir = await tempDir(t);
  const target = new MemoryTarget({ concurrency: 2 }, [pbxUser({ id: 'u1', extension: '100', email: 'a@example.com' })]);
  const state = await StateStore.open(dir);
  state.putBinding(binding('e1', 'u1', '100'));
  await state.save();
  const journal = await Journal.open(dir);
  t.teardown(() => journal.close().catch(() => undefined));
  target.failOn('createUser', () => new TerminalError('extension 102 refused by the PBX'), { subject: '102' });
  const p = plan({
    runId: 'r9',
    sources: [
      read({
        rules: RULES,
        mappingFile: 'mappings/hr.yml',
        desired: [
          desired({ anchor: 'e1', fields: { firstName: 'Changed' } }),
          desired({ anchor: 'e2', extension: fixed('101'), fields: { firstName: 'New', email: 'new@example.com' } }),
          desired({ anchor: 'e3', extension: fixed('102'), fields: { firstName: 'Refused', email: 'refused@example.com' } }),
        ],
      }),
    ],
    actual: { users: target.snapshot(), departments: [...target.departments] },
    state: state.planState(NOW, []),
    numbering: NUMBERING,
    safety: SAFETY,
  });
  const { logger, lines } = captureLogger();
  const report = await apply(p, { target, state, journal, logger, retryBaseMs: 5, now: () => NOW, audit });
  return { report, lines };
}

test('apply: every applied and every failed operation is in the audit log once its checkpoint is durable', async (t) => {
  const dir = path.join(await tempDir(t), 'audit');
  const { report } = await applied(t, new AuditLog(dir));
  t.is(report.applied.length, 2);
  t.is(report.failed.length, 1);
  const [file] = await readdir(dir);
  const entries = (await readFile(path.join(dir, file!), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as AuditEntry);
  t.deepEqual(
    entries.map((e) => [e.op, e.extension, e.result, e.rules ?? e.mapping ?? null]).sort(),
    [
      ['create', '101', 'applied', 'mappings/hr.yml'],
      ['create', '102', 'failed', 'mappings/hr.yml'],
      ['update', '100', 'applied', { firstName: RULES.firstName }],
    ],
  );
  t.regex(entries.find((e) => e.result === 'failed')?.error ?? '', /refused by the PBX/);
  t.truthy(entries.find((e) => e.extension === '101')?.userId, 'the created user');
});

test('apply: an audit log that cannot be written is warned about; the run itself succeeds', async (t) => {
  const blocker = path.join(await tempDir(t), 'not-a-folder');
  await writeFile(blocker, 'x');
  const { report, lines } = await applied(t, new AuditLog(path.join(blocker, 'audit')));
  t.is(report.applied.length, 2);
  t.true(lines.some((l) => l.level === 'warn' && l.message === 'could not write the audit log'));
});
