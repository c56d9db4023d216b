import test from 'ava';
import { setImmediate as tick } from 'node:timers/promises';
import { collectGarbage } from '../../src/util/memory.js';

/** A WeakRef to an object nothing else holds (made in a function of its own, so no local keeps it). */
function unreachable(): WeakRef<object> {
  return new WeakRef({ payload: new Array(1000).fill('x') });
}

test('collectGarbage runs a full collection without node flags: an unreachable object is gone after it', async (t) => {
  t.is(typeof (globalThis as { gc?: unknown }).gc, 'undefined', 'the test process has no --expose-gc');
  const ref = unreachable();
  // A WeakRef keeps its target alive until the end of the job that made it.
  await tick();
  collectGarbage();
  t.is(ref.deref(), undefined);
  // Fetching V8's collector left the flag as it was: new contexts still have no `gc`.
  const { runInNewContext } = await import('node:vm');
  t.is(runInNewContext('typeof gc'), 'undefined');
  // And a second call reuses the collector.
  const again = unreachable();
  await tick();
  collectGarbage();
  t.is(again.deref(), undefined);
});
