import test from 'ava';
import { ConflictError, TerminalError } from '../../../src/errors/index.js';
import { describeWarning, parseXapiError, warningsToError } from '../../../src/targets/threecx/warnings.js';
import { odataString, parseRetryAfter, tokenLifetimeMs } from '../../../src/targets/threecx/client.js';

/** An OData error envelope the way 3CX writes it: `"Field:\nCODE"` lines plus one detail per field. */
function envelope(problems: Array<[target: string, code: string]>): string {
  return JSON.stringify({
    error: {
      code: '',
      message: problems.map(([t, c]) => `${t}:\n${c}`).join('\n'),
      details: problems.map(([t, c]) => ({ code: '', message: c, target: t })),
    },
  });
}

const subject = 'user 200 (Amanda Camden)';

const cases: Array<{
  title: string;
  body: string;
  sent?: unknown;
  kind: 'conflict' | 'terminal';
  message: string;
  field?: string;
}> = [
  {
    title: 'extension in use',
    body: envelope([['Number', 'WARNINGS.XAPI.ALREADY_IN_USE']]),
    sent: { Number: '200' },
    kind: 'conflict',
    message: `${subject}: extension 200 is already in use`,
    field: 'extension',
  },
  {
    title: 'e-mail in use (the real captured body)',
    body: '{"error":{"code":"","message":"EmailAddress:\\nWARNINGS.XAPI.ALREADY_IN_USE","details":[{"code":"","message":"WARNINGS.XAPI.ALREADY_IN_USE","target":"EmailAddress"}]}}',
    sent: { EmailAddress: 'amanda@example.com' },
    kind: 'conflict',
    message: `${subject}: e-mail address amanda@example.com is already in use`,
    field: 'email',
  },
  {
    title: 'MAC used by another user',
    body: envelope([['Phones', 'WARNINGS.XAPI.MAC_USED_BY']]),
    sent: { Phones: [{ MacAddress: '001565aabbcc' }] },
    kind: 'conflict',
    message: `${subject}: phone MAC 001565aabbcc is already attached to another user`,
    field: 'phones',
  },
  {
    title: 'MAC twice (plain WARNINGS. prefix), with an indexed target',
    body: envelope([['Phones[1].MacAddress', 'WARNINGS.MAC_ADDRESS_ALREADY_IN_USE']]),
    sent: { Phones: [{ MacAddress: 'aaaaaaaaaaaa' }, { MacAddress: '001565aabbcc' }] },
    kind: 'conflict',
    message: `${subject}: phone MAC 001565aabbcc is already attached to another user`,
    field: 'phones',
  },
  {
    title: 'invalid PIN never shows the PIN',
    body: envelope([['VMPIN', 'WARNINGS.XAPI.INVALID_PIN_NUMBER']]),
    sent: { VMPIN: '12ab' },
    kind: 'terminal',
    message: `${subject}: the voicemail PIN is not valid (3CX wants digits only, at least 4)`,
    field: 'vmPin',
  },
  {
    title: 'number change forbidden',
    body: envelope([['Number', 'WARNINGS.XAPI.FORBIDDEN_CHANGE']]),
    sent: { Number: '201' },
    kind: 'terminal',
    message: `${subject}: the extension number cannot be changed once created`,
    field: 'extension',
  },
  {
    title: 'unknown template',
    body: envelope([['Phones', 'WARNINGS.XAPI.NOT_FOUND']]),
    sent: { Phones: [{ MacAddress: '001565aabbcc', TemplateName: 'nope.xml' }] },
    kind: 'terminal',
    message: `${subject}: phone template nope.xml is not known to 3CX (phone 001565aabbcc)`,
    field: 'phones',
  },
  {
    title: 'too many phones',
    body: envelope([['Phones', 'WARNINGS.XAPI.TOO_MANY_PHONES']]),
    kind: 'terminal',
    message: `${subject}: too many phones: the 3CX licence or the user has reached its phone limit`,
    field: 'phones',
  },
  {
    title: 'two fields at once, in one message',
    body: envelope([
      ['FirstName', 'WARNINGS.LENGTH_NOT_MORE_50_CHARS'],
      ['EmailAddress', 'WARNINGS.LENGTH_NOT_MORE_255_CHARS'],
    ]),
    kind: 'terminal',
    message: `${subject}: the first name is longer than 50 characters; the e-mail address is longer than 255 characters`,
    field: 'firstName',
  },
  {
    title: 'a conflict wins over a validation error in the same body',
    body: envelope([
      ['FirstName', 'WARNINGS.LENGTH_NOT_MORE_50_CHARS'],
      ['Number', 'WARNINGS.XAPI.ALREADY_IN_USE'],
    ]),
    sent: { Number: '200' },
    kind: 'conflict',
    message: `${subject}: the first name is longer than 50 characters; extension 200 is already in use`,
    field: 'extension',
  },
  {
    title: 'invalid password',
    body: envelope([['AccessPassword', 'WARNINGS.INVALID_PASSWORD']]),
    sent: { AccessPassword: 'hunter2hunter2' },
    kind: 'terminal',
    message: `${subject}: the web client password does not meet 3CX's password rules`,
  },
  {
    title: 'role downgrade',
    body: envelope([['Groups', 'WARNINGS.XAPI.USER_ROLE_DOWNGRADE']]),
    kind: 'terminal',
    message: `${subject}: 3CX refused the role change: the API client's own role is below the role being set (nobody grants a role above their own)`,
    field: 'department',
  },
  {
    title: 'unknown code passes through verbatim',
    body: envelope([['Blfs', 'WARNINGS.XAPI.SOMETHING_NEW']]),
    kind: 'terminal',
    message: `${subject}: Blfs: WARNINGS.XAPI.SOMETHING_NEW`,
  },
  {
    title: 'only a message, no details',
    body: JSON.stringify({ error: { code: '', message: 'Number:\nWARNINGS.XAPI.ALREADY_IN_USE' } }),
    sent: { Number: '300' },
    kind: 'conflict',
    message: `${subject}: extension 300 is already in use`,
    field: 'extension',
  },
  {
    title: 'free text from OData model binding',
    body: JSON.stringify({
      error: { code: '', message: "The property 'MobileNumber' does not exist on type 'Pbx.User'.", details: [{ code: '', message: "The property 'MobileNumber' does not exist on type 'Pbx.User'.", target: 'MobileNumber' }] },
    }),
    kind: 'terminal',
    message: `${subject}: MobileNumber: The property 'MobileNumber' does not exist on type 'Pbx.User'.`,
  },
];

for (const c of cases) {
  test(`WARNINGS: ${c.title}`, (t) => {
    const { warnings } = parseXapiError(c.body);
    const err = warningsToError(warnings, { subject, body: c.sent });
    t.truthy(err);
    t.is(err!.message, c.message);
    t.is(err instanceof ConflictError, c.kind === 'conflict');
    t.true(err instanceof TerminalError);
    t.is(err!.field, c.field);
  });
}

test('bodies that are not an OData envelope yield no warnings and do not throw', (t) => {
  for (const body of ['<html><body><h1>502 Bad Gateway</h1></body></html>', '', 'null', '42', '{"error":{}}', '{"value":[]}']) {
    t.deepEqual(parseXapiError(body).warnings, [], body);
    t.is(warningsToError(parseXapiError(body).warnings, { subject }), undefined);
  }
});

test('the token endpoint error body gives its description', (t) => {
  const parsed = parseXapiError('{"error":"unauthorized","error_description":"The request requires valid user authentication."}');
  t.is(parsed.message, 'The request requires valid user authentication.');
  t.deepEqual(parsed.warnings, []);
});

test('a secret field value never enters a message', (t) => {
  const d = describeWarning({ target: 'VMPIN', code: 'WARNINGS.XAPI.ALREADY_IN_USE' }, { VMPIN: '987654' });
  t.false(d.text.includes('987654'));
});

test('odataString doubles embedded quotes', (t) => {
  t.is(odataString("O'Brien"), "'O''Brien'");
  t.is(odataString("''"), "''''''");
  t.is(odataString('plain'), "'plain'");
});

test('expires_in: seconds since 20.0.9, minutes before (<= 120)', (t) => {
  t.is(tokenLifetimeMs(3600), 3_600_000);
  t.is(tokenLifetimeMs(60), 3_600_000);
  t.is(tokenLifetimeMs(120), 7_200_000);
  t.is(tokenLifetimeMs(121), 121_000);
  t.is(tokenLifetimeMs('3600'), 3_600_000);
  t.is(tokenLifetimeMs(undefined), 3_600_000);
});

test('Retry-After: seconds or an HTTP date', (t) => {
  const now = Date.parse('2025-01-01T00:00:00Z');
  t.is(parseRetryAfter('2', now), 2000);
  t.is(parseRetryAfter('0', now), 0);
  t.is(parseRetryAfter('Wed, 01 Jan 2025 00:00:05 GMT', now), 5000);
  t.is(parseRetryAfter('Tue, 31 Dec 2024 23:59:00 GMT', now), 0);
  t.is(parseRetryAfter('soon', now), undefined);
  t.is(parseRetryAfter(undefined, now), undefined);
});
