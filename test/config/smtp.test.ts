import test from 'ava';
import { parseSmtpUrl, type SmtpSettings } from '../../src/config/smtp.js';

/** The password of the refused URLs below: no error message may quote it or any piece of it. */
const PW = 'Zq7#kL/m@x';

const urls: Array<[title: string, url: string, expected: SmtpSettings | RegExp]> = [
  ['plain, default port 587', 'smtp://mail.example.com', { host: 'mail.example.com', port: 587, secure: false }],
  ['implicit TLS, default port 465', 'smtps://mail.example.com', { host: 'mail.example.com', port: 465, secure: true }],
  ['explicit port, trailing slash', 'smtp://127.0.0.1:2525/', { host: '127.0.0.1', port: 2525, secure: false }],
  ['scheme in capitals', 'SMTPS://Mail.Example.com:465', { host: 'Mail.Example.com', port: 465, secure: true }],
  ['IPv6 address without brackets', 'smtp://[::1]:25', { host: '::1', port: 25, secure: false }],
  ['internationalised host in ASCII form', 'smtp://mail.exämple.com', { host: 'mail.xn--exmple-cua.com', port: 587, secure: false }],
  [
    'user-info percent-decoded',
    'smtps://pbx%40example.com:Zq7%23kL%2Fm%40x%3A%20%25@mail.example.com:465',
    { host: 'mail.example.com', port: 465, secure: true, auth: { user: 'pbx@example.com', pass: 'Zq7#kL/m@x: %' } },
  ],
  ['user without password', 'smtp://relay@mail.example.com', { host: 'mail.example.com', port: 587, secure: false, auth: { user: 'relay', pass: '' } }],
  ['unknown scheme', `smtpx://pbx:${PW.replace(/[#/@]/g, '')}@mail.example.com`, /^must start with smtp:\/\/ or smtps:\/\//],
  ['http is no mail URL', 'http://mail.example.com', /^must start with smtp:\/\/ or smtps:\/\//],
  ['port above 65535', 'smtp://mail.example.com:99999', /^must have a port from 1 to 65535$/],
  ['port above 65535 after user-info', 'smtp://pbx:Zq7kLmx@mail.example.com:70000', /^must have a port from 1 to 65535$/],
  ['port 0', 'smtp://mail.example.com:0', /^must have a port from 1 to 65535$/],
  ['no host', 'smtp://', /^names no mail server host/],
  ['no slashes', 'smtp:mail.example.com', /^must end after host:port, with no path/],
  // An unencoded # makes WHATWG read "pbx" as the host and the rest as a fragment: refused, not sent to "pbx".
  ['unencoded # in the password', `smtp://pbx:1234#${PW}@mail.example.com`, /^must end after host:port, with no path, \?query or #fragment; .*%23/],
  ['unencoded / in the password', `smtp://pbx:1234/${PW}@mail.example.com`, /^must end after host:port, with no path/],
  ['query options', 'smtp://mail.example.com?tls.rejectUnauthorized=false', /^must end after host:port, with no path, \?query/],
  ['password that breaks the authority', `smtp://pbx:${PW}@mail.example.com`, /^is not a valid URL; expected smtp:\/\/host:port or smtps:\/\/user:password@host:port/],
  // WHATWG encodes these itself; the parser takes them.
  ['unencoded space and colon in the password', 'smtp://pbx:a b:c@mail.example.com', { host: 'mail.example.com', port: 587, secure: false, auth: { user: 'pbx', pass: 'a b:c' } }],
  ['malformed %-escape', 'smtp://pbx:Zq7%zzkLm@mail.example.com', /^holds a malformed %-escape/],
  ['not a URL at all', PW, /^is not a valid URL/],
];

for (const [title, url, expected] of urls) {
  test(`parseSmtpUrl: ${title}`, (t) => {
    if (!(expected instanceof RegExp)) {
      t.deepEqual(parseSmtpUrl(url), expected);
      return;
    }
    const err = t.throws(() => parseSmtpUrl(url), { message: expected });
    // Never quotes the URL: neither the password nor a piece of it (the part before an unencoded character).
    for (const piece of [...(url.includes('@') ? [url] : []), PW, ...PW.split(/[#/@]/).filter((p) => p.length >= 3), 'Zq7kLmx']) {
      t.false(err!.message.includes(piece), `quotes ${piece}`);
    }
  });
}
