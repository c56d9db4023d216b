import test from 'ava';
import { isoClock } from '../../src/util/clock.js';

test('isoClock gives the ISO text of the clock, one string per millisecond', (t) => {
  const times = [Date.UTC(2026, 10, 23, 15, 0, 0, 1), Date.UTC(2026, 10, 23, 15, 0, 0, 1), Date.UTC(2026, 10, 23, 15, 0, 0, 2)];
  let i = 0;
  const clock = isoClock(() => new Date(times[i++]!));
  const [a, b, c] = [clock(), clock(), clock()];
  t.is(a, '2026-11-23T15:00:00.001Z');
  t.is(b, a);
  t.is(c, '2026-11-23T15:00:00.002Z');
});
