import test from 'ava';
import { rewriteDue, type LogWeight } from '../../src/util/compaction.js';

const cases: Array<[string, LogWeight, boolean]> = [
  ['only new records in the log: all live', { logBytes: 100 << 20, minLogBytes: 1 << 20, records: 100_000, live: 100_000 }, false],
  ['half of what a load reads superseded', { logBytes: 2 << 20, minLogBytes: 1 << 20, records: 200_000, live: 100_000 }, true],
  ['just short of half', { logBytes: 2 << 20, minLogBytes: 1 << 20, records: 199_999, live: 100_000 }, false],
  ['superseded, but the log is still small', { logBytes: (1 << 20) - 1, minLogBytes: 1 << 20, records: 10, live: 1 }, false],
  ['the log exactly at its minimum', { logBytes: 1 << 20, minLogBytes: 1 << 20, records: 10, live: 1 }, true],
  ['everything deleted: two records read for none live', { logBytes: 1 << 20, minLogBytes: 1 << 20, records: 2, live: 0 }, true],
  ['everything deleted, one record read', { logBytes: 1 << 20, minLogBytes: 1 << 20, records: 1, live: 0 }, false],
];

for (const [name, weight, due] of cases) {
  test(`rewriteDue: ${name} → ${due}`, (t) => {
    t.is(rewriteDue(weight), due);
  });
}
