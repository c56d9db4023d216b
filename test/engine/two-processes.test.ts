import test from 'ava';
import { loadConfig } from '../../src/config/load.js';
import { createEngine, type Engine } from '../../src/engine/engine.js';
import { collectStatus } from '../../src/engine/status.js';
import { runSync } from '../../src/engine/sync.js';
import { EXIT } from '../../src/errors/index.js';
import { silentLogger } from '../../src/log.js';
import { makeWorkspace, person, threeCxCsv } from '../helpers/workspace.js';

async function engineFor(configFile: string): Promise<Engine> {
  return createEngine(await loadConfig(configFile), { logger: silentLogger() });
}

test('a long-running engine (the daemon) sees what another process (a CLI import) did to the state between its runs', async (t) => {
  const ws = await makeWorkspace({ mail: 'mail: { welcome: false, from: pbx@example.com }' });
  const daemon = await engineFor(ws.config);
  t.teardown(() => daemon.close());
  const first = await ws.write('first.csv', threeCxCsv([person(1001, 'Anna', 'Smith')]));
  t.is((await runSync(daemon, { inputs: { inbox: first }, full: false, dryRun: false, approve: false })).exitCode, EXIT.ok);

  // An admin runs `pbxsync import` while the daemon idles.
  const cli = await engineFor(ws.config);
  const second = await ws.write('second.csv', threeCxCsv([person(1002, 'Bob', 'Stone')]));
  const imported = await runSync(cli, { inputs: { inbox: second }, full: false, dryRun: false, approve: false });
  t.is(imported.report?.summary.create, 1);
  await cli.close();

  // The daemon's status page shows the CLI's run before the daemon runs again.
  const status = await collectStatus(daemon, { countTargetUsers: false });
  t.is(status.managed, 2);
  t.is(status.runs[0]?.runId, imported.runId);

  // The daemon's next run knows Bob is managed: the same row again changes nothing and claims nothing twice.
  const again = await runSync(daemon, { inputs: { inbox: second }, full: true, dryRun: false, approve: false });
  t.is(again.exitCode, EXIT.ok, JSON.stringify(again.plan.operations.map((o) => o.reason)));
  t.deepEqual(again.plan.operations, []);
  t.is(again.plan.summary.unchanged, 1);
  t.truthy(daemon.state.binding({ source: 'inbox', anchor: '1002' }), 'the CLI’s binding is known to the daemon');
  t.true(daemon.state.runs().some((r) => r.runId === imported.runId), 'the CLI’s run stays in the history');

  // And a fresh process reads both bindings back: the daemon's saves did not drop the CLI's.
  const later = await engineFor(ws.config);
  t.teardown(() => later.close());
  t.is(later.state.managedCount, 2);
});
