import test, { type ExecutionContext } from 'ava';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConflictError, RetryableError, TerminalError } from '../../src/errors/index.js';
import { silentLogger } from '../../src/log.js';
import { apply, type ApplyOptions } from '../../src/reconcile/apply.js';
import { Journal, readJournalRecords, type JournalRecord } from '../../src/reconcile/journal.js';
import { plan } from '../../src/reconcile/plan.js';
import type { Plan, SourceReadResult } from '../../src/reconcile/types.js';
import { StateStore } from '../../src/state/store.js';
import { BatchMemoryTarget, MemoryTarget } from './_memoryTarget.js';

/** The create path through createUser per user, and the one through createUsers (the embedded store's). */
const CREATE_PATHS: Array<[string, (limits?: ConstructorParameters<typeof MemoryTarget>[0]) => MemoryTarget]> = [
  ['one call per user', (limits) => new MemoryTarget(limits)],
  ['createUsers batches', (limits) => new BatchMemoryTarget(limits)],
];
import { NOW, NUMBERING, SAFETY, binding, daysAgo, desired, fixed, pbxUser, read } from './_builders.js';

async function setup(t: ExecutionContext, target: MemoryTarget, bindings = [] as ReturnType<typeof binding>[]) {
  const dir = await mkdtemp(path.join(tmpdir(), 'pbxsync-apply-'));
  const state = await StateStore.open(dir);
  for (const b of bindings) state.putBinding(b);
  await state.save();
  const journal = await Journal.open(dir);
  t.teardown(() => journal.close().catch(() => undefined));
  return { dir, state, journal };
}

async function planFor(target: MemoryTarget, state: StateStore, sources: SourceReadResult[], journal?: Journal, runId = 'r1'): Promise<Plan> {
  return plan({
    runId,
    sources,
    actual: { users: target.snapshot(), departments: [...target.departments] },
    state: state.planState(NOW, journal ? await journal.pendingCreates() : []),
    numbering: NUMBERING,
    safety: SAFETY,
  });
}

function opts(target: MemoryTarget, env: { state: StateStore; journal: Journal }, more: Partial<ApplyOptions> = {}): ApplyOptions {
  return { target, state: env.state, journal: env.journal, logger: silentLogger(), retryBaseMs: 5, now: () => NOW, ...more };
}

async function records(file: string): Promise<JournalRecord[]> {
  return readJournalRecords(file);
}

test('apply: phases run removals, then updates, then adopts, then creates; bindings follow', async (t) => {
  const target = new MemoryTarget({ concurrency: 4 }, [
    pbxUser({ id: 'old', extension: '100', email: 'old@example.com', enabled: false }),
    pbxUser({ id: 'off', extension: '101', email: 'off@example.com' }),
    pbxUser({ id: 'upd', extension: '102', email: 'upd@example.com' }),
    pbxUser({ id: 'loose', extension: '103', email: 'loose@example.com' }),
  ]);
  const env = await setup(t, target, [
    binding('old', 'old', '100', { disabledAt: daysAgo(40) }),
    binding('off', 'off', '101'),
    binding('upd', 'upd', '102'),
  ]);
  const p = await planFor(target, env.state, [
    read({
      removal: { action: 'delete', graceDays: 30 },
      desired: [
        desired({ anchor: 'upd', fields: { firstName: 'Changed' } }),
        desired({ anchor: 'loose', adopt: ['email'], fields: { email: 'loose@example.com' } }),
        desired({ anchor: 'new', extension: fixed('104'), fields: { firstName: 'New', email: 'old@example.com' } }),
      ],
    }),
  ]);
  t.deepEqual(
    p.operations.map((o) => o.kind),
    ['delete', 'disable', 'update', 'adopt', 'create'],
  );
  const report = await apply(p, opts(target, env));
  t.is(report.failed.length, 0);
  t.deepEqual(
    target.calls.filter((c) => c.method !== 'commit').map((c) => `${c.method} ${c.subject}`),
    ['deleteUsers old', 'updateUser off', 'updateUser upd', 'createUser 104'],
    'the adoption brought no change, so it wrote nothing',
  );
  t.deepEqual(report.summary, { create: 1, update: 1, disable: 1, enable: 0, delete: 1, adopt: 1, unchanged: 0, conflicts: 0, errors: 0 });

  const reopened = await StateStore.open(env.dir);
  t.is(reopened.binding({ source: 'inbox', anchor: 'old' }), undefined);
  t.is(reopened.binding({ source: 'inbox', anchor: 'off' })?.disabledAt, NOW.toISOString());
  t.is(reopened.binding({ source: 'inbox', anchor: 'loose' })?.userId, 'loose');
  const created = reopened.binding({ source: 'inbox', anchor: 'new' });
  t.is(created?.extension, '104');
  t.is(target.users.get(created?.userId ?? '')?.firstName, 'New');
  t.is(reopened.lastGoodCounts().inbox, 3);
});

test('apply: a no-op plan writes nothing to the target', async (t) => {
  const target = new MemoryTarget({ concurrency: 2 }, [pbxUser()]);
  const env = await setup(t, target, [binding('a1', 'u200', '200')]);
  const p = await planFor(target, env.state, [read({ desired: [desired({ fields: { firstName: 'Amanda' } })] })]);
  await apply(p, opts(target, env));
  t.is(target.writeCount(), 0);
});

for (const [createPath, makeTarget] of CREATE_PATHS) {
  test(`apply: RetryableError is retried with backoff until it succeeds, honouring Retry-After (${createPath})`, async (t) => {
    const target = makeTarget({ concurrency: 1 });
    const env = await setup(t, target);
    target.failOn('createUser', () => new RetryableError('429 Too Many Requests', { retryAfterMs: 120 }), { times: 2 });
    const p = await planFor(target, env.state, [read({ desired: [desired({ extension: fixed('300') })] })]);
    const started = Date.now();
    const report = await apply(p, opts(target, env));
    t.true(Date.now() - started >= 240, 'waited Retry-After twice');
    t.is(target.callsOf('createUser').length, 3);
    t.is(report.applied.length, 1);
    t.is(report.failed.length, 0);
  });
}

for (const [createPath, makeTarget] of CREATE_PATHS) {
  test(`apply: a terminal failure is reported with user and field, is not retried, and the others apply (${createPath})`, async (t) => {
    const target = makeTarget({ concurrency: 2 });
    const env = await setup(t, target);
    target.failOn('createUser', () => new TerminalError('e-mail refused by the PBX', { field: 'email' }), { subject: '301' });
    target.failOn('createUser', () => new ConflictError('DID held', { holder: 'x' }), { subject: '302' });
    const p = await planFor(target, env.state, [
      read({
        desired: [
          desired({ anchor: 'a', extension: fixed('300'), fields: { firstName: 'A', email: 'a@example.com' } }),
          desired({ anchor: 'b', extension: fixed('301'), fields: { firstName: 'Bea', lastName: 'Bold', email: 'b@example.com' } }),
          desired({ anchor: 'c', extension: fixed('302'), fields: { firstName: 'C', email: 'c@example.com' } }),
        ],
      }),
    ]);
    const report = await apply(p, opts(target, env));
    t.is(target.callsOf('createUser').length, 3, 'no retries');
    t.deepEqual(report.applied.map((o) => o.extension), ['300']);
    t.is(report.failed.length, 2);
    t.is(report.failed[0].error, 'create 301 Bea Bold (inbox/b): field email: e-mail refused by the PBX');
    t.is(report.summary.errors, 2);
    t.is(report.summary.create, 1);
    // Terminal failures do not hold the cursor back: they would fail the same way again.
    t.is(env.state.lastGoodCounts().inbox, 3);
  });
}

for (const [createPath, makeTarget] of CREATE_PATHS) {
  test(`apply: retries exhausted keep the source cursor where it was; other sources advance (${createPath})`, async (t) => {
    const target = makeTarget({ concurrency: 2 });
    const env = await setup(t, target);
    target.failOn('createUser', () => new RetryableError('503'), { subject: '300' });
    const p = await planFor(target, env.state, [
      read({ cursor: 'inbox-2', desired: [desired({ anchor: 'a', extension: fixed('300') })] }),
      read({ source: 'hr', mode: 'delta', cursor: 'hr-2', desired: [desired({ source: 'hr', anchor: 'h', extension: fixed('400'), fields: { firstName: 'H' } })] }),
    ]);
    const report = await apply(p, opts(target, env, { retries: 2 }));
    t.is(target.callsOf('createUser').filter((c) => c.subject === '300').length, 3);
    t.is(report.failed.length, 1);
    const reopened = await StateStore.open(env.dir);
    t.is(reopened.cursor('inbox'), undefined);
    t.false('inbox' in reopened.lastGoodCounts());
    t.is(reopened.cursor('hr'), 'hr-2');
  });
}

test('apply: the target rate limit is respected', async (t) => {
  const target = new MemoryTarget({ concurrency: 8, writesPerSecond: 10 });
  const env = await setup(t, target);
  const p = await planFor(target, env.state, [
    read({ desired: Array.from({ length: 25 }, (_, i) => desired({ anchor: `n${i}`, fields: { firstName: `N${i}` } })) }),
  ]);
  const report = await apply(p, opts(target, env));
  t.is(report.applied.length, 25);
  const times = target.callsOf('createUser').map((c) => c.at);
  for (const start of times) {
    const inWindow = times.filter((x) => x >= start && x < start + 950).length;
    t.true(inWindow <= 10, `${inWindow} writes within one second`);
  }
  t.true(times[times.length - 1] - times[0] >= 1900);
});

test('apply: concurrency never exceeds the target limit', async (t) => {
  const target = new MemoryTarget({ concurrency: 3 });
  target.delayMs = 15;
  let running = 0;
  let peak = 0;
  const create = target.createUser.bind(target);
  target.createUser = async (input) => {
    running++;
    peak = Math.max(peak, running);
    try {
      return await create(input);
    } finally {
      running--;
    }
  };
  const env = await setup(t, target);
  const p = await planFor(target, env.state, [read({ desired: Array.from({ length: 12 }, (_, i) => desired({ anchor: `n${i}`, fields: { firstName: `N${i}` } })) })]);
  await apply(p, opts(target, env, { concurrency: 10 }));
  t.is(peak, 3);
});

for (const [createPath, makeTarget] of CREATE_PATHS) {
  test(`apply: journal has start then done for each op, checkpoints commit, no secrets (${createPath})`, async (t) => {
    const target = makeTarget({ concurrency: 2 });
    const env = await setup(t, target);
    const p = await planFor(target, env.state, [
      read({ desired: Array.from({ length: 5 }, (_, i) => desired({ anchor: `n${i}`, fields: { firstName: `N${i}`, vmPin: '97531' } })) }),
    ]);
    await apply(p, opts(target, env, { checkpointEvery: 2 }));
    t.true(target.callsOf('commit').length >= 3, 'a commit every 2 operations and at the end');
    // The run finished cleanly, so the journal was rotated: history in journal.1.jsonl, nothing pending left.
    const history = await records(path.join(env.dir, 'journal.1.jsonl'));
    t.deepEqual(await records(path.join(env.dir, 'journal.jsonl')), []);
    for (const op of p.operations) {
      const phases = history.filter((r) => r.opId === op.id).map((r) => r.phase);
      t.deepEqual(phases, ['start', 'done'], op.id);
    }
    const text = await readFile(path.join(env.dir, 'journal.1.jsonl'), 'utf8');
    t.false(text.includes('97531'));
    t.deepEqual(Object.keys(history[0]).sort(), ['extension', 'key', 'kind', 'opId', 'phase', 'runId', 'ts']);
  });
}

test('apply: the next checkpoint commits while the previous one saves its bindings; each saves only after its own commit', async (t) => {
  const target = new MemoryTarget({ concurrency: 1 });
  const env = await setup(t, target);
  const p = await planFor(target, env.state, [read({ desired: Array.from({ length: 6 }, (_, i) => desired({ anchor: `n${i}`, fields: { firstName: `N${i}` } })) })]);
  const events: string[] = [];
  let releaseFirstSave!: () => void;
  const firstSaveGate = new Promise<void>((resolve) => (releaseFirstSave = resolve));
  // Never hangs: without the overlap the gate opens after 2 s and the order below fails.
  const fallback = setTimeout(releaseFirstSave, 2000);
  t.teardown(() => clearTimeout(fallback));
  let commits = 0;
  target.onWrite = (c) => {
    if (c.method !== 'commit') return;
    events.push(`commit ${++commits}`);
    if (commits === 2) releaseFirstSave();
  };
  const save = env.state.save.bind(env.state);
  let saves = 0;
  env.state.save = async () => {
    const n = ++saves;
    events.push(`save ${n} start (${env.state.bindings().length} bound)`);
    if (n === 1) await firstSaveGate;
    await save();
    events.push(`save ${n} end`);
  };
  await apply(p, opts(target, env, { checkpointEvery: 2 }));
  t.is(env.state.bindings().length, 6);
  const at = (e: string) => events.findIndex((x) => x.startsWith(e));
  t.true(at('commit 2') < at('save 1 end'), events.join(' | '));
  for (let n = 1; n <= saves; n++) t.true(at(`commit ${n}`) < at(`save ${n} start`), `save ${n} after commit ${n}: ${events.join(' | ')}`);
  // Each save holds the bindings of its own checkpoint, in order.
  t.deepEqual(events.filter((e) => e.startsWith('save') && e.includes('start')).slice(0, 3), ['save 1 start (2 bound)', 'save 2 start (4 bound)', 'save 3 start (6 bound)']);
});

for (const [createPath, makeTarget] of CREATE_PATHS) {
  test(`apply: a crash after the writes converges on restart without duplicates (pendingCreates) (${createPath})`, async (t) => {
    const target = makeTarget({ concurrency: 2 });
    const env = await setup(t, target);
    const sources = [read({ desired: Array.from({ length: 3 }, (_, i) => desired({ anchor: `n${i}`, fields: { firstName: `N${i}` } })) })];
    const p1 = await planFor(target, env.state, sources);
    // The process "dies" at the first checkpoint: users exist in the PBX, nothing else was saved.
    target.failOn('commit', () => new Error('killed'), { times: 1 });
    await t.throwsAsync(apply(p1, opts(target, env, { checkpointEvery: 100 })), { message: /checkpoint of run r1 failed/ });
    t.is(target.users.size, 3);
    await env.journal.close();

    const dir = env.dir;
    const state = await StateStore.open(dir);
    t.deepEqual(state.bindings(), []);
    const journal = await Journal.open(dir);
    t.teardown(() => journal.close().catch(() => undefined));
    const pending = await journal.pendingCreates();
    t.deepEqual(
      pending.map((x) => `${x.key.anchor} ${x.extension}`),
      ['n0 1000', 'n1 1001', 'n2 1002'],
    );

    const p2 = await planFor(target, state, sources, journal, 'r2');
    t.deepEqual(p2.operations.map((o) => `${o.kind} ${o.extension} ${o.reason}`), [
      'adopt 1000 recovered from an interrupted run',
      'adopt 1001 recovered from an interrupted run',
      'adopt 1002 recovered from an interrupted run',
    ]);
    await apply(p2, { ...opts(target, { state, journal }) });
    t.is(target.users.size, 3, 'no duplicates');
    t.is(state.bindings().length, 3);
    t.deepEqual(await journal.pendingCreates(), []);

    const p3 = await planFor(target, state, sources, journal, 'r3');
    t.deepEqual(p3.operations, [], 'converged');
  });
}

for (const [createPath, makeTarget] of CREATE_PATHS) {
  test(`apply: abort stops taking new ops, lets in-flight ones finish and saves what was done (${createPath})`, async (t) => {
    const target = makeTarget({ concurrency: 1 });
    target.delayMs = 20;
    const env = await setup(t, target);
    const controller = new AbortController();
    target.onWrite = (c) => {
      if (c.method === 'createUser' && target.callsOf('createUser').length === 2) controller.abort();
    };
    const p = await planFor(target, env.state, [
      read({ cursor: 'c2', desired: Array.from({ length: 6 }, (_, i) => desired({ anchor: `n${i}`, fields: { firstName: `N${i}` } })) }),
    ]);
    const report = await apply(p, opts(target, env, { signal: controller.signal, checkpointEvery: 2 }));
    t.true(report.interrupted);
    t.is(report.applied.length, 2);
    t.is(report.skipped.length, 4);
    t.is(target.users.size, 2);
    const reopened = await StateStore.open(env.dir);
    t.is(reopened.bindings().length, 2);
    t.is(reopened.cursor('inbox'), undefined, 'not all of the source was applied');
  });
}

test('apply: refuses a held plan; dry run writes nothing', async (t) => {
  const target = new MemoryTarget();
  const env = await setup(t, target);
  const p = await planFor(target, env.state, [read({ desired: [desired()] })]);
  await t.throwsAsync(apply({ ...p, held: 'would delete 12 users' }, opts(target, env)), { message: /is held/ });
  const dry = await apply(p, opts(target, env, { dryRun: true }));
  t.true(dry.dryRun);
  t.is(dry.skipped.length, 1);
  t.is(target.calls.length, 0);
});

test('apply: departments are ensured before any user write; ops needing them fail if that fails', async (t) => {
  const target = new MemoryTarget();
  const env = await setup(t, target);
  const sources = [
    read({
      desired: [
        desired({ anchor: 'a', createDepartments: true, fields: { firstName: 'A', department: 'Support' } }),
        desired({ anchor: 'b', fields: { firstName: 'B' } }),
      ],
    }),
  ];
  const p = await planFor(target, env.state, sources);
  t.deepEqual(p.departments, ['Support']);
  await apply(p, opts(target, env));
  t.is(target.calls[0].method, 'ensureDepartments');

  const t2 = new MemoryTarget();
  const env2 = await setup(t, t2);
  t2.failOn('ensureDepartments', () => new TerminalError('no rights'));
  const report = await apply(await planFor(t2, env2.state, sources), opts(t2, env2));
  t.deepEqual(report.applied.map((o) => o.key?.anchor), ['b']);
  t.regex(report.failed[0].error, /could not create departments Support: no rights/);
});

test('apply: enable clears disabledAt; re-disable keeps the first date', async (t) => {
  const target = new MemoryTarget({ concurrency: 1 }, [pbxUser({ enabled: false }), pbxUser({ id: 'u201', extension: '201', email: 'b@example.com' })]);
  const env = await setup(t, target, [binding('a1', 'u200', '200', { disabledAt: daysAgo(5) }), binding('gone', 'u201', '201', { disabledAt: daysAgo(5) })]);
  const p = await planFor(target, env.state, [read({ desired: [desired({ fields: { firstName: 'Amanda' } })] })]);
  t.deepEqual(p.operations.map((o) => o.kind), ['disable', 'enable']);
  await apply(p, opts(target, env));
  t.true(target.users.get('u200')?.enabled);
  t.false(target.users.get('u201')?.enabled);
  t.is(env.state.binding({ source: 'inbox', anchor: 'a1' })?.disabledAt, undefined);
  t.is(env.state.binding({ source: 'inbox', anchor: 'gone' })?.disabledAt, daysAgo(5));
});

test('apply: a disable the mapping asks for (a Disabled cell) starts no grace period; the removal policy\'s does', async (t) => {
  const target = new MemoryTarget({ concurrency: 1 }, [pbxUser(), pbxUser({ id: 'u201', extension: '201', email: 'b@example.com' })]);
  const env = await setup(t, target, [binding('a1', 'u200', '200'), binding('gone', 'u201', '201')]);
  const marked = desired({ fields: { firstName: 'Amanda', lastName: 'Camden', email: 'amanda@example.com', enabled: false } });
  const p = await planFor(target, env.state, [read({ desired: [marked] })]);
  t.deepEqual(p.operations.map((o) => [o.kind, o.key?.anchor, o.mapped]), [['disable', 'a1', true], ['disable', 'gone', undefined]]);
  await apply(p, opts(target, env));
  t.false(target.users.get('u200')?.enabled);
  t.false(target.users.get('u201')?.enabled);
  t.is(env.state.binding({ source: 'inbox', anchor: 'a1' })?.disabledAt, undefined);
  t.is(env.state.binding({ source: 'inbox', anchor: 'gone' })?.disabledAt, NOW.toISOString());
});

test('apply: masked secrets from a saved plan are never written', async (t) => {
  const target = new MemoryTarget({ concurrency: 1 }, [pbxUser()]);
  const env = await setup(t, target, [binding('a1', 'u200', '200')]);
  const p = await planFor(target, env.state, [read({ desired: [desired({ fields: { firstName: 'Noelle', vmPin: '5555' } })] })]);
  const masked = { ...p, operations: p.operations.map((o) => ({ ...o, after: { ...o.after, vmPin: '[secret]' } })) };
  await apply(masked, opts(target, env));
  t.deepEqual(target.callsOf('updateUser')[0].changes, { firstName: 'Noelle' });
});

test('apply: createUsers gets batches of at most 250 users and never more than a checkpoint; every user is bound', async (t) => {
  for (const [checkpointEvery, expected] of [[undefined, [250, 250, 100]], [100, [100, 100, 100, 100, 100, 100]]] as const) {
    const target = new BatchMemoryTarget();
    const env = await setup(t, target);
    const p = await planFor(target, env.state, [read({ desired: Array.from({ length: 600 }, (_, i) => desired({ anchor: `n${i}`, fields: { firstName: `N${i}` } })) })]);
    const report = await apply(p, opts(target, env, { checkpointEvery }));
    t.deepEqual(target.batches, [...expected]);
    t.is(report.applied.length, 600);
    t.is((await StateStore.open(env.dir)).bindings().length, 600);
  }
});
