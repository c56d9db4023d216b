import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let collector: (() => void) | undefined;

/**
 * Runs a full garbage collection now. For the moment between phases of a large run, when most of what the
 * last phase allocated just became garbage: V8 lets the old generation grow well past the live data before
 * collecting on its own, so without this a 100,000-user import carried the read phase's garbage (and the
 * mapped users it no longer needs) into the apply phase, ~60 MB more at its peak.
 *
 * The collector is V8's `gc`: the one Node exposes with `--expose-gc` when the process has it, otherwise
 * fetched the way Jest's leak detector does (set the flag, read `gc` from a new context, unset the flag), so
 * pbxsync needs no node flags. Costs a full collection: tens of milliseconds on a large heap.
 */
export function collectGarbage(): void {
  if (!collector) {
    const exposed = (globalThis as { gc?: () => void }).gc;
    if (typeof exposed === 'function') {
      collector = exposed;
    } else {
      setFlagsFromString('--expose-gc');
      collector = runInNewContext('gc') as () => void;
      setFlagsFromString('--no-expose-gc');
    }
  }
  collector();
}
