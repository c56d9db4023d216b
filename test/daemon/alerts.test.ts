import test from 'ava';
import { Alerter, alertsBetween, failedFileAlert, type AlertSnapshot } from '../../src/daemon/alerts.js';
import type { CsvReport } from '../../connectors/csv/report.js';
import type { Mailer, MailMessage } from '../../src/mail/mailer.js';
import { registerSecret, silentLogger } from '../../src/log.js';

const calm: AlertSnapshot = { held: null, sources: {} };
const held = (reason: string, runId = 'r1'): AlertSnapshot['held'] => ({ reason, file: `/var/lib/pbxsync/plans/${runId}.json`, runId });

const table: Array<[string, AlertSnapshot, AlertSnapshot, string[]]> = [
  ['nothing changes', calm, calm, []],
  ['a plan is held', calm, { held: held('would disable 10 of 20 managed users'), sources: {} }, ['plan held, nothing applied']],
  ['the same reason held again at the next run', { held: held('would disable 10', 'r1'), sources: {} }, { held: held('would disable 10', 'r2'), sources: {} }, []],
  ['held for another reason', { held: held('would disable 10'), sources: {} }, { held: held('would delete 12', 'r2'), sources: {} }, ['plan held, nothing applied']],
  ['the held plan approved', { held: held('would disable 10'), sources: {} }, calm, []],
  ['a source that never ran fails', calm, { held: null, sources: { hr: 'connect ECONNREFUSED' } }, ['runs of source hr are failing']],
  ['a working source fails', { held: null, sources: { hr: null } }, { held: null, sources: { hr: 'connect ECONNREFUSED' } }, ['runs of source hr are failing']],
  ['still failing, another error', { held: null, sources: { hr: 'a' } }, { held: null, sources: { hr: 'b' } }, []],
  ['works again', { held: null, sources: { hr: 'connect ECONNREFUSED' } }, { held: null, sources: { hr: null } }, ['runs of source hr work again']],
  ['still working', { held: null, sources: { hr: null } }, { held: null, sources: { hr: null } }, []],
  [
    'two sources and a held plan at once',
    { held: null, sources: { hr: null, ad: 'x' } },
    { held: held('would disable 10'), sources: { hr: 'timeout', ad: null } },
    ['plan held, nothing applied', 'runs of source hr are failing', 'runs of source ad work again'],
  ],
];
for (const [name, before, after, subjects] of table) {
  test(`alertsBetween: ${name}`, (t) => {
    t.deepEqual(
      alertsBetween(before, after, 'pbx1').map((a) => a.subject),
      subjects.map((s) => `pbxsync on pbx1: ${s}`),
    );
  });
}

test('alertsBetween: a held plan tells why, the run and how to approve it; a failure tells the error', (t) => {
  const [heldAlert] = alertsBetween(calm, { held: held('would disable 10 of 20 managed users (50 %)', 'r7'), sources: {} }, 'pbx1');
  t.regex(heldAlert!.text, /Why: would disable 10 of 20 managed users \(50 %\)/);
  t.regex(heldAlert!.text, /Run: r7/);
  t.regex(heldAlert!.text, /pbxsync apply \/var\/lib\/pbxsync\/plans\/r7\.json/);
  const [failing] = alertsBetween(calm, { held: null, sources: { hr: 'LDAP bind refused' } }, 'pbx1');
  t.regex(failing!.text, /Error: LDAP bind refused/);
});

/** A mailer that keeps what it is given; `refuse` makes it fail for one recipient. */
function recordingMailer(refuse?: string): Mailer & { sent: MailMessage[] } {
  const sent: MailMessage[] = [];
  return {
    kind: 'outbox',
    sent,
    async send(message) {
      if (message.to === refuse) throw new Error('mailbox unavailable');
      sent.push(message);
    },
    async close() {},
  };
}

test('Alerter: each change once to every recipient; the state at start is not told again; a refused recipient does not stop the others', async (t) => {
  const mailer = recordingMailer('broken@example.com');
  const alerter = new Alerter({
    mailer,
    to: ['a@example.com', 'broken@example.com', 'b@example.com'],
    logger: silentLogger(),
    // Held before the daemon started: already told by the process that held it.
    initial: { held: held('would disable 10'), sources: { hr: null, ad: null } },
    host: 'pbx1',
  });
  await alerter.update({ held: held('would disable 10', 'r2'), sources: { hr: null } });
  t.deepEqual(mailer.sent, []);

  await alerter.update({ held: held('would disable 10', 'r3'), sources: { hr: 'connect ECONNREFUSED 10.0.0.5:636' } });
  t.deepEqual(mailer.sent.map((m) => [m.to, m.subject]), [
    ['a@example.com', 'pbxsync on pbx1: runs of source hr are failing'],
    ['b@example.com', 'pbxsync on pbx1: runs of source hr are failing'],
  ]);
  // A run of another source leaves hr as it was: no "works again" because hr is absent from that snapshot.
  await alerter.update({ held: held('would disable 10', 'r4'), sources: { ad: null } });
  t.is(mailer.sent.length, 2);
  await alerter.update({ held: null, sources: { hr: null } });
  t.deepEqual(mailer.sent.slice(2).map((m) => m.subject), ['pbxsync on pbx1: runs of source hr work again', 'pbxsync on pbx1: runs of source hr work again']);
  await alerter.close();
});

test('Alerter: a secret that reached an error never leaves in an alert', async (t) => {
  registerSecret('Tr0ub4dor&3-bind');
  const mailer = recordingMailer();
  const alerter = new Alerter({ mailer, to: ['a@example.com'], logger: silentLogger(), initial: calm, host: 'pbx1' });
  await alerter.update({ held: null, sources: { hr: 'bind as cn=svc with Tr0ub4dor&3-bind refused' } });
  t.is(mailer.sent.length, 1);
  t.false(JSON.stringify(mailer.sent).includes('Tr0ub4dor&3-bind'));
  t.regex(mailer.sent[0]!.text, /with \[redacted\] refused/);
});

const report = (overrides: Partial<CsvReport>): CsvReport => ({
  file: '/srv/inbox/staff.csv',
  source: 'inbox',
  startedAt: '2026-11-23T02:30:00.000Z',
  finishedAt: '2026-11-23T02:30:01.000Z',
  rows: 0,
  applied: 0,
  rejected: [],
  ...overrides,
});

test('failedFileAlert: the error of a file that could not be read, the rejected rows of one without a usable row, nothing for a held file', (t) => {
  const unreadable = failedFileAlert(report({ error: 'the header has no column FirstName (required); nothing was read' }), '/srv/inbox/failed', 'pbx1');
  t.is(unreadable?.subject, 'pbxsync on pbx1: staff.csv went to failed/, nothing applied');
  t.regex(unreadable!.text, /moved to \/srv\/inbox\/failed\./);
  t.regex(unreadable!.text, /^Error: the header has no column FirstName \(required\); nothing was read$/m);

  const rejected = Array.from({ length: 12 }, (_, i) => ({ line: i + 2, kind: 'rejected' as const, column: 'Number', reason: `extension 91${i} is an emergency number` }));
  const noRow = failedFileAlert(report({ rows: 12, rejected }), '/srv/inbox/failed', 'pbx1');
  t.regex(noRow!.text, /^12 rows read, none usable:$/m);
  t.regex(noRow!.text, /^ {2}line 2, Number: extension 910 is an emergency number$/m);
  t.regex(noRow!.text, /^ {2}line 11, Number: extension 919 is an emergency number$/m);
  t.notRegex(noRow!.text, /line 12,/);
  t.regex(noRow!.text, /^ {2}… and 2 more in the report$/m);

  t.is(failedFileAlert(report({ held: 'would disable 10 of 20 managed users' }), '/srv/inbox/failed', 'pbx1'), undefined);
});

test('Alerter.fileFailed: the file alert stands for its source starting to fail; other changes are told as usual', async (t) => {
  const mailer = recordingMailer();
  const alerter = new Alerter({ mailer, to: ['a@example.com'], logger: silentLogger(), initial: { held: null, sources: { inbox: null, hr: null } }, host: 'pbx1' });
  const subjects = () => mailer.sent.map((m) => m.subject.replace('pbxsync on pbx1: ', ''));

  await alerter.fileFailed(report({ error: 'the header has no column FirstName (required); nothing was read' }), '/srv/inbox/failed', { held: null, sources: { inbox: 'incomplete read' } });
  t.deepEqual(subjects(), ['staff.csv went to failed/, nothing applied']);
  // Still failing at the next broken file: only that file is told.
  await alerter.fileFailed(report({ file: '/srv/inbox/tuesday.csv', error: 'empty file' }), '/srv/inbox/failed', { held: null, sources: { inbox: 'incomplete read' } });
  t.deepEqual(subjects().slice(1), ['tuesday.csv went to failed/, nothing applied']);
  await alerter.update({ held: null, sources: { inbox: null } });
  t.deepEqual(subjects().slice(2), ['runs of source inbox work again']);

  // A file held by a safety guard goes to failed/ too: its alert is the held plan's.
  await alerter.fileFailed(report({ held: 'would disable 10 of 20 managed users' }), '/srv/inbox/failed', { held: held('would disable 10 of 20 managed users'), sources: { inbox: null } });
  t.deepEqual(subjects().slice(3), ['plan held, nothing applied']);
  await alerter.close();
});
