/**
 * Records a load reads (base file and log) per live record that make rewriting the base due: at least half
 * of what the two hold is superseded (records changed again, or removed). A log of new records is all live
 * data and stays a log, so a bulk import writes each record once.
 */
export const READ_TO_LIVE_RATIO = 2;

/** What {@link rewriteDue} weighs: a base file with an append-only log of changes over it. */
export interface LogWeight {
  /** Bytes in the log. */
  logBytes: number;
  /** Below this log size the base is never rewritten (a small store would otherwise be at nearly every write). */
  minLogBytes: number;
  /** Records a load reads: those in the base plus those in the log. */
  records: number;
  /** Live records (what the base would hold after the rewrite). */
  live: number;
}

/**
 * True when the base should be rewritten from memory and the log emptied. The rule of the embedded store's
 * document and of the bindings snapshot: a rule on the log's size relative to the base instead rewrote a
 * growing base several times over a 100,000-user import.
 */
export function rewriteDue(w: LogWeight): boolean {
  return w.logBytes >= w.minLogBytes && w.records >= READ_TO_LIVE_RATIO * Math.max(1, w.live);
}
