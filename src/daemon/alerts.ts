/**
 * Alerts: the daemon tells the admins (`mail.alertsTo`) by e-mail when something needs them and nobody may
 * be looking at `status` or the metrics: a plan held by a safety guard (nothing is applied until someone
 * approves it), a source that starts failing, that source working again, and a dropped file of which nothing
 * could be applied (a broken nightly export would otherwise land in failed/ unseen: the source itself works).
 *
 * Each change is told once. The same held plan reason or the same failing source at the next run (a poll
 * every five minutes) alerts nobody; the state at the daemon's start counts as already told, so a restart
 * does not repeat what was sent before it.
 */
import os from 'node:os';
import path from 'node:path';
import type { CsvReport } from '../../connectors/csv/report.js';
import type { Logger } from '../log.js';
import { redact } from '../log.js';
import type { Mailer } from '../mail/mailer.js';
import type { StateStore } from '../state/store.js';
import { describeError } from '../errors/index.js';

/** What alerts are about, as the state holds it after a run. */
export interface AlertSnapshot {
  /** The plan waiting for approval, if any. */
  held: { reason: string; file: string; runId: string } | null;
  /** Per source: its error while its last run failed, null while it works (absent: never ran). */
  sources: Record<string, string | null>;
}

/** One alert e-mail. */
export interface Alert {
  subject: string;
  text: string;
  /** The source this alert says started failing (a file alert about the same failure replaces it). */
  failingSource?: string;
}

/** Rejected rows an alert lists at most (the report beside the file has them all). */
const MAX_LISTED_ROWS = 10;

/**
 * The alert for a dropped file moved to `failed/` (pure). None for a file held by a safety guard: the held
 * plan has an alert of its own.
 */
export function failedFileAlert(report: CsvReport, failedFolder: string, host: string): Alert | undefined {
  if (report.held) return undefined;
  const name = path.basename(report.file);
  const why = report.error
    ? [`Error: ${report.error}`]
    : [
        report.rows === 0 ? 'Nothing could be read:' : `${report.rows} row${report.rows === 1 ? '' : 's'} read, none usable:`,
        ...report.rejected.slice(0, MAX_LISTED_ROWS).map((r) => `  ${r.line ? `line ${r.line}` : 'file'}${r.column ? `, ${r.column}` : ''}: ${r.reason}`),
        ...(report.rejected.length > MAX_LISTED_ROWS ? [`  … and ${report.rejected.length - MAX_LISTED_ROWS} more in the report`] : []),
      ];
  return {
    subject: `pbxsync on ${host}: ${name} went to failed/, nothing applied`,
    text: [`The file ${name} dropped for source ${report.source} could not be applied; it was moved to ${failedFolder}.`, '', ...why, '', 'Its report is beside it. Fix the file and drop it again.'].join('\n'),
  };
}

/** The snapshot of `sources` in `state`. */
export function alertSnapshot(state: StateStore, sources: readonly string[]): AlertSnapshot {
  const held = state.held();
  const out: AlertSnapshot = { held: held ? { reason: held.reason, file: held.file, runId: held.runId } : null, sources: {} };
  for (const name of sources) {
    const last = state.sourceHealth(name);
    if (last) out.sources[name] = last.ok ? null : (last.error ?? 'the last run failed');
  }
  return out;
}

/**
 * The alerts for the change from `before` to `after` (pure): a plan newly held, or held for another reason;
 * each source that starts failing; each source that works again after failing. `host` names the machine in
 * the subjects (several pbxsync installs may write to one mailbox).
 */
export function alertsBetween(before: AlertSnapshot, after: AlertSnapshot, host: string): Alert[] {
  const alerts: Alert[] = [];
  if (after.held && after.held.reason !== before.held?.reason) {
    alerts.push({
      subject: `pbxsync on ${host}: plan held, nothing applied`,
      text: [
        'A safety guard held the plan of a pbxsync run: nothing of it was applied.',
        '',
        `Why: ${after.held.reason}`,
        `Run: ${after.held.runId}`,
        `Plan: ${after.held.file}`,
        '',
        'Review it with `pbxsync plan` (or read the plan file), then either let it through with',
        `  pbxsync apply ${after.held.file}`,
        'or fix the source. Until then every run that would do the same is held too.',
      ].join('\n'),
    });
  }
  for (const [source, error] of Object.entries(after.sources)) {
    const was = before.sources[source];
    if (error !== null && (was === null || was === undefined)) {
      alerts.push({
        failingSource: source,
        subject: `pbxsync on ${host}: runs of source ${source} are failing`,
        text: [
          `The last run of source ${source} failed (reading it or writing to the PBX); nobody was removed because of it.`,
          '',
          `Error: ${error}`,
          '',
          '`pbxsync status` shows the last runs. You get one more e-mail when its runs work again.',
        ].join('\n'),
      });
    } else if (error === null && typeof was === 'string') {
      alerts.push({
        subject: `pbxsync on ${host}: runs of source ${source} work again`,
        text: `The last run of source ${source} succeeded. It had failed with: ${was}`,
      });
    }
  }
  return alerts;
}

/** Options of {@link Alerter}. */
export interface AlerterOptions {
  mailer: Mailer;
  /** Recipients (mail.alertsTo). */
  to: readonly string[];
  logger: Logger;
  /** The state at the daemon's start: what was true then is not told again. */
  initial: AlertSnapshot;
  /** Names the machine in the subjects; default the host name. */
  host?: string;
}

/** Sends the alerts for each new snapshot (see {@link alertsBetween}), one snapshot at a time. */
export class Alerter {
  private last: AlertSnapshot;
  private chain: Promise<void> = Promise.resolve();
  private readonly host: string;

  constructor(private readonly options: AlerterOptions) {
    this.last = options.initial;
    this.host = options.host ?? os.hostname();
  }

  /**
   * Sends what changed since the previous snapshot. Never throws: an alert that cannot be sent is logged
   * (the change is still visible in `status` and the metrics) and not retried.
   */
  update(next: AlertSnapshot): Promise<void> {
    this.chain = this.chain.then(() => this.send(next));
    return this.chain;
  }

  /**
   * Tells about a dropped file moved to `failedFolder` (see {@link failedFileAlert}) together with the state
   * after its run, like {@link update}. The file's alert says what went wrong, so it is not told a second
   * time as its source starting to fail (a snapshot file that cannot be read is an incomplete read); the
   * source working again is told as usual. Never throws.
   */
  fileFailed(report: CsvReport, failedFolder: string, next: AlertSnapshot): Promise<void> {
    const alert = failedFileAlert(report, failedFolder, this.host);
    this.chain = this.chain.then(() => this.send(next, alert && { alert, source: report.source }));
    return this.chain;
  }

  /** Waits for the alerts being sent, then closes the mailer. */
  async close(): Promise<void> {
    await this.chain;
    await this.options.mailer.close();
  }

  private async send(next: AlertSnapshot, file?: { alert: Alert; source: string }): Promise<void> {
    // Merged, so a run of one source never reads as the others having vanished.
    const merged: AlertSnapshot = { held: next.held, sources: { ...this.last.sources, ...next.sources } };
    let alerts = alertsBetween(this.last, merged, this.host);
    if (file) alerts = [...alerts.filter((a) => a.failingSource !== file.source), file.alert];
    this.last = merged;
    for (const alert of alerts) await this.mail(alert);
  }

  private async mail(alert: Alert): Promise<void> {
    // Errors and reasons are redacted at the source; once more here, since a mail leaves the machine.
    const message = { subject: redact(alert.subject), text: redact(alert.text) };
    for (const to of this.options.to) {
      try {
        await this.options.mailer.send({ to, ...message });
        this.options.logger.info('alert sent', { to, subject: message.subject });
      } catch (err) {
        this.options.logger.warn('could not send an alert', { to, subject: message.subject, error: describeError(err) });
      }
    }
  }
}
