import test from 'ava';
import { TerminalError } from '../../../src/errors/index.js';
import type { UserFieldName } from '../../../src/model/index.js';
import {
  compareExtensions,
  fieldEquals,
  normaliseField,
  normaliseMac,
  normaliseNewUser,
  statusTags,
  vmPinProblem,
  webPasswordProblem,
  type StatusInput,
  type StatusTag,
} from '../../../src/targets/embedded/rules.js';

const passwordCases: Array<[string, string | undefined]> = [
  ['Abcdefgh12', undefined],
  ['aB3aB3aB3aB3aB3', undefined],
  ['Abcdefg12', 'password must be at least 10 characters long'],
  ['Abcd efgh12', 'password must not contain spaces'],
  ['Abcdefgh1\t2', 'password must not contain spaces'],
  ['ABCDEFGH12', 'password must contain a lowercase letter'],
  ['abcdefgh12', 'password must contain an uppercase letter'],
  ['Abcdefghij', 'password must contain a digit'],
];
for (const [password, expected] of passwordCases) {
  test(`web password rule: ${JSON.stringify(password)} → ${expected ?? 'ok'}`, (t) => {
    t.is(webPasswordProblem(password), expected);
  });
}

const pinCases: Array<[string, string | undefined]> = [
  ['1234', undefined],
  ['0000123456', undefined],
  ['123', 'voicemail PIN must have at least 4 digits'],
  ['12a4', 'voicemail PIN must be numbers only'],
  ['12 34', 'voicemail PIN must be numbers only'],
  ['', 'voicemail PIN must be numbers only'],
];
for (const [pin, expected] of pinCases) {
  test(`voicemail PIN rule: ${JSON.stringify(pin)} → ${expected ?? 'ok'}`, (t) => {
    t.is(vmPinProblem(pin), expected);
  });
}

const statusCases: Array<[string, StatusInput, StatusTag[]]> = [
  ['e-mail, generated credentials', { email: 'a@x.com', credentials: { webPassword: 'Abcdefgh12', vmPin: '1234' }, credentialsSetByUser: false }, ['New']],
  ['e-mail, own credentials', { email: 'a@x.com', credentials: { webPassword: 'Abcdefgh12', vmPin: '1234' }, credentialsSetByUser: true }, []],
  ['no e-mail', { email: null, credentials: { webPassword: 'Abcdefgh12', vmPin: '1234' }, credentialsSetByUser: false }, ['Setup Required']],
  ['no e-mail, no password', { email: null, credentials: { webPassword: null, vmPin: '1234' }, credentialsSetByUser: true }, ['Setup Required', 'Password Required']],
  ['e-mail, own PIN but no password', { email: 'a@x.com', credentials: { webPassword: null, vmPin: '1234' }, credentialsSetByUser: true }, ['New', 'Password Required']],
];
for (const [name, input, expected] of statusCases) {
  test(`status tags: ${name}`, (t) => {
    t.deepEqual(statusTags(input), expected);
  });
}

test('extensions sort as numbers are read, not as strings', (t) => {
  t.deepEqual(['1000', '99', '100', '12', '1001'].sort(compareExtensions), ['12', '99', '100', '1000', '1001']);
});

const macCases: Array<[string, string | undefined]> = [
  ['00:15:65:AA:BB:CC', '001565aabbcc'],
  ['0015-65aa-bbcc', '001565aabbcc'],
  ['001565AABBCC', '001565aabbcc'],
  ['0015.65aa.bbcc', '001565aabbcc'],
  ['001565aabbc', undefined],
  ['001565aabbcg', undefined],
];
for (const [mac, expected] of macCases) {
  test(`MAC ${mac} normalises to ${expected ?? 'nothing'}`, (t) => {
    t.is(normaliseMac(mac), expected);
  });
}

const refused: Array<[UserFieldName, unknown, RegExp]> = [
  ['firstName', '', /first name is required/],
  ['firstName', '   ', /first name is required/],
  ['firstName', null, /first name is required/],
  ['email', 'not-an-address', /e-mail "not-an-address" is not an e-mail address/],
  ['role', 'admins', /role "admins" is not one of users, receptionists/],
  ['role', 'System Owner', /role "System Owner" is not one of/],
  ['vmPin', '12', /at least 4 digits/],
  ['vmPin', '12ab', /numbers only/],
  ['dids', ['+49 30 1234', 'call me'], /DID "callme" is not a phone number/],
  ['phones', [{ mac: 'xyz' }], /MAC "xyz" must be 12 hex digits/],
  ['phones', [{ mac: '001565aabbcc' }, { mac: '00:15:65:AA:BB:CC' }], /MAC 001565aabbcc is listed twice/],
  ['enabled', 'yes', /enabled must be true or false/],
  ['options', { Ringtone: 1 }, /option Ringtone must be text/],
];
for (const [field, value, message] of refused) {
  test(`field ${field} refuses ${JSON.stringify(value)}`, (t) => {
    const err = t.throws(() => normaliseField(field, value, 'extension 1001'), { instanceOf: TerminalError, message });
    t.true(err!.message.startsWith('extension 1001: '));
    t.is((err as TerminalError).field, field);
  });
}

test('the voicemail PIN is never echoed in its error message', (t) => {
  const err = t.throws(() => normaliseField('vmPin', '98x7', 'extension 1001'));
  t.false(err!.message.includes('98x7'));
});

test('normalisation sorts and lower-cases as PbxUser promises', (t) => {
  const user = normaliseNewUser(
    {
      firstName: ' Anna ',
      email: ' Anna@Example.COM ',
      department: 'Sales',
      extraDepartments: ['Support', 'Sales', 'Admin', 'Support'],
      dids: ['+4930222', '+4930111', '+4930222'],
      phones: [{ mac: 'BB:BB:BB:BB:BB:BB' }, { mac: 'aa-aa-aa-aa-aa-aa', model: ' Yealink T46U ', template: '' }],
      options: { b: '1', a: '2' },
    },
    'extension 1001',
  );
  t.is(user.firstName, 'Anna');
  t.is(user.email, 'anna@example.com');
  t.deepEqual(user.extraDepartments, ['Admin', 'Support']);
  t.deepEqual(user.dids, ['+4930111', '+4930222']);
  t.deepEqual(user.phones, [{ mac: 'aaaaaaaaaaaa', model: 'Yealink T46U' }, { mac: 'bbbbbbbbbbbb' }]);
  t.deepEqual(Object.keys(user.options), ['a', 'b']);
});

test('a new user gets 2FA off, voicemail on, role users and the DEFAULT department unless told otherwise', (t) => {
  const user = normaliseNewUser({ firstName: 'Anna' }, 'extension 1001');
  t.false(user.require2fa);
  t.true(user.vmEnabled);
  t.true(user.enabled);
  t.is(user.role, 'users');
  t.is(user.department, 'DEFAULT');
  t.is(user.email, null);
});

const equality: Array<[unknown, unknown, boolean]> = [
  [['a', 'b'], ['a', 'b'], true],
  [['a', 'b'], ['b', 'a'], false],
  [{ a: '1' }, { a: '1' }, true],
  [{ a: '1' }, { a: '1', b: '2' }, false],
  [[{ mac: 'aa', model: 'x' }], [{ mac: 'aa', model: 'x' }], true],
  [[{ mac: 'aa', model: 'x' }], [{ mac: 'aa' }], false],
  [null, null, true],
  [null, '', false],
];
for (const [a, b, expected] of equality) {
  test(`fieldEquals(${JSON.stringify(a)}, ${JSON.stringify(b)}) is ${expected}`, (t) => {
    t.is(fieldEquals(a, b), expected);
  });
}

test('options are copied with sorted keys, whichever order they come in; __proto__ is dropped, non-text refused', (t) => {
  const sorted = { a: '1', b: '2' };
  const copy = normaliseField('options', sorted, 'extension 1001');
  t.deepEqual(copy, sorted);
  t.not(copy, sorted);
  t.deepEqual(Object.keys(normaliseField('options', { b: '2', a: '1' }, 'extension 1001')), ['a', 'b']);
  const parsed = JSON.parse('{"__proto__":"x","a":"1"}') as Record<string, string>;
  const cleaned = normaliseField('options', parsed, 'extension 1001');
  t.deepEqual(Object.keys(cleaned), ['a']);
  t.is(Object.getPrototypeOf(cleaned), Object.prototype);
  t.throws(() => normaliseField('options', { a: 1 }, 'extension 1001'), { message: /option a must be text/ });
});
