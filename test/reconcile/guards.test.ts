import test from 'ava';
import { applyGuards } from '../../src/reconcile/guards.js';
import type { Operation, Plan, PlanState, SafetyPolicy } from '../../src/reconcile/types.js';
import { NOW, SAFETY, planOf, read } from './_builders.js';

function withOps(kind: 'delete' | 'disable', n: number, source = read()): Plan {
  const base = planOf({ sources: [source] });
  const ops: Operation[] = Array.from({ length: n }, (_, i) => ({
    id: `${kind}:inbox/x${i}`,
    kind,
    key: { source: 'inbox', anchor: `x${i}` },
    userId: `u${i}`,
    extension: String(1000 + i),
    reason: 'left',
  }));
  return { ...base, operations: ops };
}

const state = (lastGoodCount: Record<string, number> = {}): PlanState => ({ bindings: [], lastGoodCount, now: NOW });

const table: Array<{ name: string; plan: () => Plan; safety?: Partial<SafetyPolicy>; managed: number; last?: Record<string, number>; held: RegExp | null }> = [
  { name: 'deletes under both thresholds', plan: () => withOps('delete', 5), managed: 1000, held: null },
  {
    name: 'deletes over the count threshold',
    plan: () => withOps('delete', 12),
    managed: 1000,
    held: /^would delete 12 users \(threshold 10 \/ 10 %\): approve with `pbxsync apply <plan>` or `--approve`$/,
  },
  { name: 'deletes over the percent threshold', plan: () => withOps('delete', 3), managed: 20, held: /would delete 3 users/ },
  { name: 'disables over the count threshold', plan: () => withOps('disable', 11), managed: 1000, held: /would disable 11 users/ },
  { name: 'disables under thresholds', plan: () => withOps('disable', 10), managed: 1000, held: null },
  {
    name: 'short full read',
    plan: () => withOps('disable', 0, read({ count: 40 })),
    managed: 1000,
    last: { inbox: 1000 },
    held: /^inbox returned 40 identities, last good read had 1000/,
  },
  { name: 'full read above the minimum ratio', plan: () => withOps('disable', 0, read({ count: 600 })), managed: 1000, last: { inbox: 1000 }, held: null },
  {
    name: 'a short partial read is not a short read (absence means nothing there)',
    plan: () => withOps('disable', 0, read({ mode: 'partial', count: 3 })),
    managed: 1000,
    last: { inbox: 1000 },
    held: null,
  },
];

for (const row of table) {
  test(`guards: ${row.name}`, (t) => {
    const out = applyGuards(row.plan(), { state: state(row.last), safety: { ...SAFETY, ...row.safety }, managedCount: row.managed });
    if (row.held === null) t.is(out.held, null);
    else t.regex(out.held ?? '', row.held);
  });
}

test('guards: approval lets threshold and short-read holds through', (t) => {
  const p = withOps('delete', 50, read({ count: 10 }));
  const held = applyGuards(p, { state: state({ inbox: 1000 }), safety: SAFETY, managedCount: 100 });
  t.regex(held.held ?? '', /inbox returned 10 identities.*; would delete 50 users/);
  const approved = applyGuards(p, { state: state({ inbox: 1000 }), safety: SAFETY, managedCount: 100, approved: true });
  t.is(approved.held, null);
  t.is(approved.operations.length, 50);
});

test('guards: do not change the operations', (t) => {
  const p = withOps('delete', 50);
  t.deepEqual(applyGuards(p, { state: state(), safety: SAFETY, managedCount: 100 }).operations, p.operations);
});
