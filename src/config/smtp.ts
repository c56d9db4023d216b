import { domainToASCII } from 'node:url';

/**
 * Connection settings of an SMTP URL, in the shape nodemailer's SMTP transport takes them.
 *
 * WARNING: `auth.pass` is the password in clear; hand it to the transport and nowhere else (never log these
 * settings or put them into an error).
 */
export interface SmtpSettings {
  host: string;
  port: number;
  /** TLS from the first byte (`smtps://`); otherwise plain, upgraded with STARTTLS when the server offers it. */
  secure: boolean;
  /** User name and password, percent-decoded; absent when the URL holds no user-info. */
  auth?: { user: string; pass: string };
}

/** Default ports: submission (587) for `smtp://`, implicit TLS (465) for `smtps://`, as nodemailer has them. */
const SMTP_DEFAULT_PORTS = { 'smtp:': 587, 'smtps:': 465 } as const;

const SHAPE = 'smtp://host:port or smtps://user:password@host:port';
const ENCODE_HINT = 'percent-encode a user name or password written out (# as %23, / as %2F, @ as %40, ? as %3F); a ${VARIABLE} in the user-info is encoded by pbxsync';

/**
 * Parses `mail.smtpUrl` with the WHATWG URL parser: scheme `smtp:` or `smtps:`, a host, a port from 1 to
 * 65535, optional user-info, nothing after the authority. nodemailer gets the result as an options object,
 * never the URL string: given a string it falls back to the legacy `url.parse()` for anything WHATWG rejects,
 * and Node's deprecation warning for that prints the whole URL, password included, on stderr.
 *
 * Error messages never quote the URL or any part of it (a mistyped URL may hold the password anywhere).
 * @throws Error saying what is wrong.
 */
export function parseSmtpUrl(text: string): SmtpSettings {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    // WHATWG's own error carries the input; ours says what to fix without quoting it.
    if (portOutOfRange(text)) throw new Error('must have a port from 1 to 65535');
    throw new Error(`is not a valid URL; expected ${SHAPE}; ${ENCODE_HINT}`);
  }
  const scheme = url.protocol as keyof typeof SMTP_DEFAULT_PORTS;
  if (!(scheme in SMTP_DEFAULT_PORTS)) throw new Error(`must start with smtp:// or smtps:// (expected ${SHAPE})`);
  // The path is checked first: "smtp:host" and "smtp:/host" parse with an empty host and the name in the path.
  if ((url.pathname !== '' && url.pathname !== '/') || url.search !== '' || url.hash !== '') {
    throw new Error(`must end after host:port, with no path, ?query or #fragment; ${ENCODE_HINT}`);
  }
  if (url.host === '' || url.hostname === '') throw new Error(`names no mail server host (expected ${SHAPE})`);
  const port = url.port === '' ? SMTP_DEFAULT_PORTS[scheme] : Number(url.port);
  if (port < 1) throw new Error('must have a port from 1 to 65535');

  let host: string;
  let auth: SmtpSettings['auth'];
  try {
    // smtp: is not a "special" scheme, so WHATWG leaves its host percent-encoded and IPv6 in brackets;
    // nodemailer (net.connect, dns.lookup) wants the plain name or address.
    host = decodeURIComponent(url.hostname).replace(/^\[(.*)\]$/, '$1');
    if (url.username !== '' || url.password !== '') {
      auth = { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) };
    }
  } catch {
    throw new Error('holds a malformed %-escape (a % must be followed by two hex digits; write a literal % as %25)');
  }
  // An internationalised name goes to DNS in its ASCII (punycode) form; '' when it is no valid name.
  if (/[^\x00-\x7f]/.test(host)) host = domainToASCII(host);
  if (host === '') throw new Error(`names no valid mail server host (expected ${SHAPE})`);
  return { host, port, secure: scheme === 'smtps:', ...(auth ? { auth } : {}) };
}

/** Whether a URL the WHATWG parser refused ends its authority in a port it would refuse for size alone. */
function portOutOfRange(text: string): boolean {
  const authority = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#]*)/.exec(text.trim())?.[1];
  if (authority === undefined) return false;
  const port = /:(\d+)$/.exec(authority.slice(authority.lastIndexOf('@') + 1))?.[1];
  return port !== undefined && Number(port) > 65535;
}
