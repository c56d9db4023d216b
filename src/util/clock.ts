/**
 * The clock as ISO text, with the text reused while the millisecond is the same: a 100,000-operation run
 * asks for it hundreds of thousands of times within far fewer milliseconds (one string each instead of one
 * per call, and no `toISOString` per call).
 */
export function isoClock(now: () => Date): () => string {
  let lastMs = Number.NaN;
  let lastText = '';
  return () => {
    const date = now();
    const ms = date.getTime();
    if (ms !== lastMs) {
      lastMs = ms;
      lastText = date.toISOString();
    }
    return lastText;
  };
}
