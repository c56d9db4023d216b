import test from 'ava';
import { createScheduler } from '../../src/daemon/scheduler.js';
import { captureLogger, deferred, settle } from './_logger.js';

function scheduler() {
  const log = captureLogger();
  const s = createScheduler({ logger: log.logger });
  return { s, ...log };
}

test('a job does not run twice at once: a tick during a run is skipped and logged', async (t) => {
  const { s, lines } = scheduler();
  t.teardown(s.stop);
  const gate = deferred();
  let runs = 0;
  s.every('hr:poll', '0 0 1 1 *', async () => {
    runs++;
    await gate.promise;
  });
  const first = s.trigger('hr:poll');
  await settle();
  t.false(await s.trigger('hr:poll'));
  t.is(runs, 1);
  t.true(lines.some((l) => l.message === 'skipped a tick: the previous run is still going' && l.meta?.job === 'hr:poll'));
  gate.resolve();
  t.true(await first);
  t.true(await s.trigger('hr:poll'));
  t.is(runs, 2);
});

test('cron ticks run the job and overlapping ticks are skipped', async (t) => {
  const { s, waitFor } = scheduler();
  t.teardown(s.stop);
  const gate = deferred();
  const started = deferred();
  let runs = 0;
  s.every('tick', '* * * * * *', async () => {
    runs++;
    started.resolve();
    await gate.promise;
  });
  // Waits for events, not durations: the first tick starts the job, a later one finds it running.
  await started.promise;
  await waitFor((l) => l.message.startsWith('skipped a tick') && l.meta?.job === 'tick');
  t.is(runs, 1);
  gate.resolve();
});

test('a failing job is logged and runs again on the next tick', async (t) => {
  const { s, lines } = scheduler();
  t.teardown(s.stop);
  let runs = 0;
  s.every('flaky', '0 0 1 1 *', async () => {
    runs++;
    throw new Error('LDAP server down');
  });
  t.true(await s.trigger('flaky'));
  t.true(await s.trigger('flaky'));
  t.is(runs, 2);
  t.deepEqual(
    lines.filter((l) => l.level === 'error').map((l) => l.meta?.error),
    ['LDAP server down', 'LDAP server down'],
  );
});

test('runExclusive serialises tasks of one key in arrival order and returns their results', async (t) => {
  const { s } = scheduler();
  t.teardown(s.stop);
  const events: string[] = [];
  const gateA = deferred();
  const a = s.runExclusive('hr', async () => {
    events.push('A start');
    await gateA.promise;
    events.push('A end');
    return 'a';
  });
  const b = s.runExclusive('hr', async () => {
    events.push('B start');
    return 'b';
  });
  const c = s.runExclusive('hr', async () => {
    events.push('C start');
    return 'c';
  });
  await settle();
  t.deepEqual(events, ['A start']);
  gateA.resolve();
  t.deepEqual(await Promise.all([a, b, c]), ['a', 'b', 'c']);
  t.deepEqual(events, ['A start', 'A end', 'B start', 'C start']);
});

test('runExclusive lets different keys run at the same time', async (t) => {
  const { s } = scheduler();
  t.teardown(s.stop);
  const gate = deferred();
  const events: string[] = [];
  const hr = s.runExclusive('hr', async () => {
    events.push('hr');
    await gate.promise;
  });
  const entra = s.runExclusive('entra', async () => {
    events.push('entra');
  });
  await entra;
  t.deepEqual(events, ['hr', 'entra']);
  gate.resolve();
  await hr;
});

test('a failing exclusive task rejects to its caller and the next one still runs', async (t) => {
  const { s } = scheduler();
  t.teardown(s.stop);
  const failing = s.runExclusive('hr', async () => {
    throw new Error('bad CSV');
  });
  const next = s.runExclusive('hr', async () => 'ran');
  await t.throwsAsync(failing, { message: 'bad CSV' });
  t.is(await next, 'ran');
});

test('a dropped file waits for the scheduled poll of its source', async (t) => {
  const { s } = scheduler();
  t.teardown(s.stop);
  const gate = deferred();
  const events: string[] = [];
  s.every('hr:poll', '0 0 1 1 *', async () => {
    await s.runExclusive('hr', async () => {
      events.push('poll start');
      await gate.promise;
      events.push('poll end');
    });
  });
  const poll = s.trigger('hr:poll');
  await settle();
  const file = s.runExclusive('hr', async () => {
    events.push('file');
    return 'processed';
  });
  await settle();
  t.deepEqual(events, ['poll start']);
  gate.resolve();
  t.is(await file, 'processed');
  await poll;
  t.deepEqual(events, ['poll start', 'poll end', 'file']);
});

test('stop() aborts the signal and waits for the task in flight; queued tasks resolve undefined', async (t) => {
  const { s } = scheduler();
  const gate = deferred();
  let sawAbort = false;
  let finished = false;
  const inFlight = s.runExclusive('hr', async (signal) => {
    await gate.promise;
    sawAbort = signal.aborted;
    finished = true;
    return 'done';
  });
  let queuedRan = false;
  const queued = s.runExclusive('hr', async () => {
    queuedRan = true;
    return 'queued';
  });
  await settle();
  let stopped = false;
  const stopping = s.stop().then(() => (stopped = true));
  await settle();
  t.true(s.signal.aborted);
  t.false(stopped);
  t.false(finished);
  gate.resolve();
  await stopping;
  t.true(finished);
  t.true(sawAbort);
  t.is(await inFlight, 'done');
  t.is(await queued, undefined);
  t.false(queuedRan);
});

test('stop() waits for a running cron job and no tick runs afterwards', async (t) => {
  const { s } = scheduler();
  const gate = deferred();
  let runs = 0;
  let sawAbort = false;
  s.every('full', '0 0 1 1 *', async (signal) => {
    runs++;
    await gate.promise;
    sawAbort = signal.aborted;
  });
  const run = s.trigger('full');
  await settle();
  const stopping = s.stop();
  gate.resolve();
  await stopping;
  t.true(sawAbort);
  t.true(await run);
  t.false(await s.trigger('full'));
  t.is(runs, 1);
});

test('after stop, runExclusive resolves undefined without running and every() throws', async (t) => {
  const { s } = scheduler();
  await s.stop();
  let ran = false;
  t.is(
    await s.runExclusive('hr', async () => {
      ran = true;
    }),
    undefined,
  );
  t.false(ran);
  t.throws(() => s.every('x', '* * * * *', async () => {}), { message: /scheduler is stopped/ });
  await s.stop(); // idempotent
});

const badSchedules: Array<[string, string, RegExp]> = [
  ['invalid cron', 'every minute', /invalid cron expression "every minute"/],
  ['duplicate name', '* * * * *', /already scheduled/],
];
for (const [title, expr, message] of badSchedules) {
  test(`every() throws on ${title}`, async (t) => {
    const { s } = scheduler();
    t.teardown(s.stop);
    s.every('dup', '0 0 1 1 *', async () => {});
    t.throws(() => s.every(title === 'duplicate name' ? 'dup' : 'other', expr, async () => {}), { message });
  });
}

test('trigger() of an unknown job throws', async (t) => {
  const { s } = scheduler();
  t.teardown(s.stop);
  await t.throwsAsync(s.trigger('nope'), { message: 'no scheduled job named "nope"' });
});

test('a time zone is passed to the cron jobs', async (t) => {
  const log = captureLogger();
  const s = createScheduler({ logger: log.logger, timezone: 'Mars/Olympus' });
  t.teardown(s.stop);
  t.throws(() => s.every('x', '0 3 * * *', async () => {}), { message: /time zone/i });
});
