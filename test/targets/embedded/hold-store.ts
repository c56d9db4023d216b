/**
 * Child process for the lock tests: opens the store given as argv[2], prints "open", and keeps it open
 * until killed (SIGKILL leaves the lock behind, as a crashed daemon would).
 */
import { silentLogger } from '../../../src/log.js';
import { EmbeddedTarget } from '../../../src/targets/embedded/target.js';

const target = await EmbeddedTarget.fromConfig(
  { type: 'embedded', storeFile: process.argv[2] },
  {
    numbering: { ranges: [], reserved: [], emergency: [] },
    mail: { welcome: false, alertsTo: [], from: 'pbx@example.com', outbox: process.argv[2] + '.outbox' },
    logger: silentLogger(),
    lockStaleMs: 2000,
  },
);
process.stdout.write('open\n');
setInterval(() => target.writeCount(), 60_000);
