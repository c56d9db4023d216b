import { TerminalError } from '../errors/index.js';
import type { PbxUser } from '../model/index.js';
import type { MailMessage } from './mailer.js';

/** The user facts a welcome e-mail shows. */
export type WelcomeUser = Pick<PbxUser, 'extension' | 'firstName' | 'lastName' | 'displayName' | 'email'>;

/** The credentials a welcome e-mail hands over (the SIP ones reach phones by provisioning, not by mail). */
export interface WelcomeCredentials {
  webPassword: string | null;
  vmPin: string | null;
}

/** Options of welcomeMessage. */
export interface WelcomeOptions {
  from: string;
  /** The web client's address; left out of the mail when unknown. */
  webClientUrl?: string;
}

/**
 * Composes the welcome e-mail with the account details, as 3CX's own does on user creation (seeds/000:
 * "Your team members will get an email with account details"): extension, web-client address, login
 * e-mail, web password and voicemail PIN. This is the one place credentials leave the store.
 * @throws TerminalError when the user has no e-mail address.
 */
export function welcomeMessage(user: WelcomeUser, credentials: WelcomeCredentials, options: WelcomeOptions): MailMessage {
  if (!user.email) throw new TerminalError(`extension ${user.extension}: has no e-mail address for a welcome e-mail`, { field: 'email' });
  const name = user.displayName || `${user.firstName} ${user.lastName}`.trim();
  const rows: Array<[string, string]> = [['Extension', user.extension]];
  if (options.webClientUrl) rows.push(['Web client', options.webClientUrl]);
  rows.push(['Login (e-mail)', user.email]);
  if (credentials.webPassword) rows.push(['Password', credentials.webPassword]);
  if (credentials.vmPin) rows.push(['Voicemail PIN', credentials.vmPin]);

  const width = Math.max(...rows.map(([label]) => label.length)) + 2;
  const text = [
    `Hello ${user.firstName},`,
    '',
    'your phone system account is ready. These are your account details:',
    '',
    ...rows.map(([label, value]) => `  ${(label + ':').padEnd(width)}${value}`),
    '',
    'Please change your password after your first login, and keep this e-mail private.',
    'Phones and apps are set up for you; you do not need to enter any other details.',
    '',
  ].join('\n');

  const html = [
    '<!DOCTYPE html><html><body>',
    `<p>Hello ${escapeHtml(user.firstName)},</p>`,
    '<p>your phone system account is ready. These are your account details:</p>',
    '<table>',
    ...rows.map(([label, value]) => `<tr><th align="left">${escapeHtml(label)}</th><td>${cellHtml(label, value)}</td></tr>`),
    '</table>',
    '<p>Please change your password after your first login, and keep this e-mail private.<br>',
    'Phones and apps are set up for you; you do not need to enter any other details.</p>',
    '</body></html>',
  ].join('\n');

  return {
    from: options.from,
    to: name ? `"${name.replace(/["\\]/g, '')}" <${user.email}>` : user.email,
    subject: `Your phone system account: extension ${user.extension}`,
    text,
    html,
    extension: user.extension,
  };
}

function cellHtml(label: string, value: string): string {
  if (label === 'Web client' && /^https?:\/\//i.test(value)) return `<a href="${escapeHtml(value)}">${escapeHtml(value)}</a>`;
  // Credentials in <code> so mail clients show them in a font where l, 1 and I differ.
  if (label === 'Password' || label === 'Voicemail PIN') return `<code>${escapeHtml(value)}</code>`;
  return escapeHtml(value);
}

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}
