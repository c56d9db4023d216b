import { existsSync } from 'node:fs';
import { acquireLock } from '../state/lock.js';
import { describeError } from '../errors/index.js';
import type { Engine } from './engine.js';

/**
 * Sends the welcome e-mails an earlier process left due (it stopped before or while sending them), under
 * the apply lock like a run. The daemon calls it at start: without it they would wait for the next run that
 * opens the PBX store (a dropped file's, or the nightly one), since an unchanged input skips the store.
 * Does nothing for a target without a welcome queue of its own (3CX sends its mails itself) or with
 * welcome mails off. A failure is logged, not thrown: the mails stay due for the next run.
 */
export async function sendDueWelcomes(engine: Engine, signal?: AbortSignal): Promise<void> {
  const t = engine.config.target;
  // No store yet: nothing can be due, and opening one would write it.
  if (t.type !== 'embedded' || !engine.config.mail.welcome || !existsSync(t.storeFile)) return;
  try {
    const release = await acquireLock(engine.config.stateDir);
    try {
      const target = await engine.openTarget({ signal });
      try {
        const due = target.pendingWelcomes?.() ?? 0;
        if (due > 0) {
          engine.logger.info('sending the welcome e-mails left due by the last run', { due });
          await target.commit();
        }
      } finally {
        await target.close();
      }
    } finally {
      await release();
    }
  } catch (err) {
    engine.logger.warn('could not send the welcome e-mails left due; they go out with the next run', { error: describeError(err) });
  }
}
