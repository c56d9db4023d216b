import test from 'ava';
import fs from 'node:fs/promises';
import { makeWorkspace, spawnDaemon, staff, threeCxCsv, waitFor } from '../helpers/workspace.js';

function last(stdout: string): Record<string, any> {
  return JSON.parse(stdout.trim().split('\n').pop()!);
}

/** A snapshot source whose thresholds never hold: only the short-read guard (minSourceRatio 0.5) can. */
function wideOpenSnapshotWorkspace(): ReturnType<typeof makeWorkspace> {
  return makeWorkspace({
    mode: 'snapshot',
    safety: `safety:
  maxDeletes: 1000
  maxDeletePercent: 100
  maxDisables: 1000
  maxDisablePercent: 100
  minSourceRatio: 0.5
  removal:
    action: disable
    graceDays: 30`,
  });
}

async function enabledCount(ws: Awaited<ReturnType<typeof makeWorkspace>>): Promise<number> {
  const out = await ws.cli(['export', '--format', 'json']);
  return (JSON.parse(out.stdout) as Array<{ enabled: boolean }>).filter((u) => u.enabled).length;
}

test('a snapshot that would disable more than the threshold holds the whole plan (exit 3); status says why; apply of the saved plan lets it through', async (t) => {
  const ws = await makeWorkspace({ mode: 'snapshot' });
  const full = await ws.write('all.csv', threeCxCsv(staff(20)));
  const first = await ws.cli(['import', full]);
  t.is(first.code, 0, first.stdout + first.stderr);
  t.is(await enabledCount(ws), 20);

  // Half the company missing, plus one rename that must not slip through either.
  const rows = staff(10);
  rows[0] = { ...rows[0], FirstName: 'Renamed' };
  const half = await ws.write('half.csv', threeCxCsv(rows));
  const held = await ws.cli(['import', half, '--json']);
  t.is(held.code, 3, held.stderr);
  const summary = last(held.stdout);
  t.truthy(summary.held);
  t.regex(summary.held, /disable 10/);
  t.is(summary.summary.disable, 10);
  t.is(await enabledCount(ws), 20, 'nothing applied');
  const exportedNames = JSON.parse((await ws.cli(['export', '--format', 'json'])).stdout) as Array<{ firstName: string }>;
  t.false(exportedNames.some((u) => u.firstName === 'Renamed'), 'not even the harmless update was applied');

  const status = await ws.cli(['status', '--json']);
  t.is(status.code, 0, status.stderr);
  const st = JSON.parse(status.stdout);
  t.truthy(st.held);
  t.regex(st.held.reason, /disable 10/);
  const planFile = summary.heldPlan as string;
  t.truthy(planFile);
  await fs.access(planFile);

  const approved = await ws.cli(['apply', planFile, '--json']);
  t.is(approved.code, 0, approved.stdout + approved.stderr);
  t.is(last(approved.stdout).summary.disable, 10);
  t.is(await enabledCount(ws), 10);
  const after = JSON.parse((await ws.cli(['status', '--json'])).stdout);
  t.is(after.held, null, 'the held plan is cleared once approved');
});

test('--approve lets a held import through; a saved plan whose basis changed is refused', async (t) => {
  const ws = await makeWorkspace({ mode: 'snapshot' });
  t.is((await ws.cli(['import', await ws.write('all.csv', threeCxCsv(staff(20)))])).code, 0);
  const half = await ws.write('half.csv', threeCxCsv(staff(10)));
  const held = await ws.cli(['import', half, '--json']);
  t.is(held.code, 3);
  const planFile = last(held.stdout).heldPlan as string;

  // The basis changes: the PBX moves on (someone is renamed by a later full file) before the plan is approved.
  const renamed = staff(20);
  renamed[5] = { ...renamed[5], LastName: 'Married' };
  t.is((await ws.cli(['import', await ws.write('all2.csv', threeCxCsv(renamed))])).code, 0);
  const stale = await ws.cli(['apply', planFile]);
  t.is(stale.code, 2, stale.stdout + stale.stderr);
  t.regex(stale.stderr, /basis changed/);
  t.is(await enabledCount(ws), 20);

  const forced = await ws.cli(['import', half, '--approve', '--json']);
  t.is(forced.code, 0, forced.stderr);
  t.is(last(forced.stdout).summary.disable, 10);
  t.is(await enabledCount(ws), 10);
});

test('apply of a plan already applied is refused (exit 2) and recorded nowhere: run history and source health stay as they were, the daemon\'s /healthz stays 200', async (t) => {
  const ws = await makeWorkspace({ mode: 'snapshot' });
  t.is((await ws.cli(['import', await ws.write('all.csv', threeCxCsv(staff(20)))])).code, 0);
  const held = await ws.cli(['import', await ws.write('half.csv', threeCxCsv(staff(10))), '--json']);
  t.is(held.code, 3, held.stdout + held.stderr);
  const planFile = last(held.stdout).heldPlan as string;
  const approved = await ws.cli(['apply', planFile]);
  t.is(approved.code, 0, approved.stdout + approved.stderr);

  const status = async () => {
    const r = await ws.cli(['status', '--json']);
    t.is(r.code, 0, r.stderr);
    const { runs, sources, held: heldPlan } = JSON.parse(r.stdout);
    return { runs, sources, held: heldPlan };
  };
  const before = await status();
  t.like(before.sources[0], { name: 'inbox', health: { ok: true } });

  const again = await ws.cli(['apply', planFile]);
  t.is(again.code, 2, again.stdout + again.stderr);
  t.regex(again.stderr, /the saved plan no longer matches .* \(its basis changed\)/);
  t.deepEqual(await status(), before, 'neither a run nor a failing source was recorded');
  t.notRegex((await ws.cli(['status'])).stdout, /FAILING/);

  // The daemon reads the state file for /healthz: a refusal made next to it does not make it unhealthy.
  const daemon = spawnDaemon(ws);
  t.teardown(() => daemon.child.kill('SIGKILL'));
  const statusUrl = await waitFor('the daemon to start', () =>
    daemon.logs().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { message?: string; status?: string }).find((e) => e.message === 'pbxsync running')?.status,
  );
  t.is((await fetch(`${statusUrl}/healthz`)).status, 200);
  t.is((await ws.cli(['apply', planFile])).code, 2);
  const health = await fetch(`${statusUrl}/healthz`);
  t.is(health.status, 200, await health.text());
  daemon.child.kill('SIGTERM');
  t.is(await daemon.exited, 0, daemon.logs());
});

test('a held snapshot approved with import --approve: the nightly full run keeps the approved state, not the older file in processed/', async (t) => {
  const ws = await makeWorkspace({ mode: 'snapshot' });
  // The daemon applied all.csv and moved it to processed/; half.csv was held and went to failed/.
  const all = await ws.write('inbox/all.csv', threeCxCsv(staff(20)));
  t.is((await ws.cli(['import', all])).code, 0);
  await fs.mkdir(`${ws.inbox}/processed`);
  await fs.rename(all, `${ws.inbox}/processed/all.csv`);
  const half = await ws.write('inbox/failed/half.csv', threeCxCsv(staff(10)));
  t.is((await ws.cli(['import', half])).code, 3);

  const approved = await ws.cli(['import', half, '--approve', '--json']);
  t.is(approved.code, 0, approved.stderr);
  t.is(last(approved.stdout).summary.disable, 10);

  const night = await ws.cli(['sync', '--full', '--json']);
  t.is(night.code, 0, night.stdout + night.stderr);
  t.like(last(night.stdout).summary, { create: 0, update: 0, disable: 0, enable: 0, delete: 0 });
  t.is(await enabledCount(ws), 10, 'the users the admin approved removing stay disabled');
});

test('a snapshot far smaller than the last good read removes nobody and is held', async (t) => {
  const ws = await wideOpenSnapshotWorkspace();
  t.is((await ws.cli(['import', await ws.write('all.csv', threeCxCsv(staff(20)))])).code, 0);
  const short = await ws.cli(['import', await ws.write('short.csv', threeCxCsv(staff(3))), '--json']);
  t.is(short.code, 3);
  t.regex(last(short.stdout).held, /3 identities.*20/);
  t.is(await enabledCount(ws), 20);
});

test('a snapshot with a header and no rows (an export that came out empty) removes nobody, even with the thresholds wide open', async (t) => {
  const ws = await wideOpenSnapshotWorkspace();
  t.is((await ws.cli(['import', await ws.write('all.csv', threeCxCsv(staff(20)))])).code, 0);
  const empty = await ws.cli(['import', await ws.write('empty.csv', threeCxCsv([])), '--json']);
  t.is(empty.code, 3, empty.stdout + empty.stderr);
  t.regex(last(empty.stdout).held, /0 identities.*20/);
  t.is(last(empty.stdout).summary.disable, 20, 'the plan shows what it would have done');
  t.is(await enabledCount(ws), 20);
});
