import test from 'ava';
import { createMetrics } from '../../src/daemon/metrics.js';

test('the metrics text names every pbxsync metric with its labels', async (t) => {
  const m = createMetrics();
  m.runs.inc({ source: 'hr', result: '0' });
  m.operations.inc({ kind: 'create', result: 'applied' }, 3);
  m.runDuration.observe({ source: 'hr' }, 1.5);
  m.lastSuccess.set({ source: 'hr' }, 1_700_000_000);
  m.managedUsers.set(42);
  m.heldPlans.set(1);
  m.sourceIdentities.set({ source: 'hr' }, 40);
  const text = await m.registry.metrics();
  const expected = [
    'pbxsync_runs_total{source="hr",result="0"} 1',
    'pbxsync_operations_total{kind="create",result="applied"} 3',
    'pbxsync_run_duration_seconds_count{source="hr"} 1',
    'pbxsync_run_duration_seconds_sum{source="hr"} 1.5',
    'pbxsync_last_success_timestamp_seconds{source="hr"} 1700000000',
    'pbxsync_managed_users 42',
    'pbxsync_held_plans 1',
    'pbxsync_source_identities{source="hr"} 40',
  ];
  for (const line of expected) t.true(text.includes(line), line);
});

test('default process metrics are included', async (t) => {
  const text = await createMetrics().registry.metrics();
  t.regex(text, /^pbxsync_process_cpu_user_seconds_total /m);
  t.regex(text, /^pbxsync_nodejs_heap_size_used_bytes /m);
});

test('each createMetrics has its own registry', async (t) => {
  const a = createMetrics();
  const b = createMetrics();
  a.managedUsers.set(5);
  b.managedUsers.set(7);
  t.regex(await a.registry.metrics(), /^pbxsync_managed_users 5$/m);
  t.regex(await b.registry.metrics(), /^pbxsync_managed_users 7$/m);
});

test('pbxsync_managed_users is read at each scrape when given a reader (a CLI import next to the daemon changes it)', async (t) => {
  let managed = 3;
  const m = createMetrics({ managedUsers: () => managed });
  t.regex(await m.registry.metrics(), /^pbxsync_managed_users 3$/m);
  managed = 5;
  t.regex(await m.registry.metrics(), /^pbxsync_managed_users 5$/m);
});
