import test from 'ava';
import { RollingWindowGate } from '../../../src/targets/threecx/rate.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('never more than cap requests between any start and the window after their ends', async (t) => {
  const gate = new RollingWindowGate(3, 200);
  const spans: Array<[number, number]> = [];
  const t0 = Date.now();
  await Promise.all(
    Array.from({ length: 10 }, (_, i) =>
      gate.run(async () => {
        const start = Date.now() - t0;
        // Uneven durations: what the server sees in between start and end varies.
        await sleep(5 + (i % 3) * 20);
        spans.push([start, Date.now() - t0]);
      }),
    ),
  );
  t.is(spans.length, 10);
  // Any instant a server could see a request arrive lies in [start, end]; a window [a, a+200) holds at most 3.
  for (let a = 0; a < 2000; a += 5) {
    const inWindow = spans.filter(([s, e]) => s < a + 200 && e >= a).length;
    t.true(inWindow <= 3, `window at ${a} ms holds ${inWindow}`);
  }
  t.true(Math.max(...spans.map(([s]) => s)) >= 600, '10 requests at 3 per window need at least three windows');
});

test('a waiting request can be aborted; close rejects the rest', async (t) => {
  const gate = new RollingWindowGate(1, 1000);
  const first = gate.run(() => sleep(10));
  const ac = new AbortController();
  const waiting = gate.run(async () => 'ran', ac.signal);
  const other = gate.run(async () => 'ran');
  ac.abort(new Error('stop'));
  await t.throwsAsync(waiting, { message: 'stop' });
  await first;
  gate.clear(new Error('closed'));
  await t.throwsAsync(other, { message: 'closed' });
});
