import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { createRequire } from 'node:module';
import type { Transporter } from 'nodemailer';
import type MailComposerType from 'nodemailer/lib/mail-composer';
import { parseSmtpUrl, type SmtpSettings } from '../config/smtp.js';
import type { MailConfig } from '../config/types.js';
import { RetryableError, TerminalError, describeError } from '../errors/index.js';
import { redact, type Logger } from '../log.js';

/** One e-mail. */
export interface MailMessage {
  to: string;
  subject: string;
  text: string;
  html?: string;
  /** Overrides MailConfig.from. */
  from?: string;
  /** The extension the mail is about; names the outbox file (`<timestamp>-<extension>-<random>.eml`). */
  extension?: string;
}

/** Sends e-mail over SMTP, or drops it as `.eml` files into an outbox folder. */
export interface Mailer {
  readonly kind: 'smtp' | 'outbox';
  /**
   * Sends one message: one delivery attempt (for SMTP, one connection when none is open), never retried here.
   * Retrying is the caller's: a welcome mail stays pending for the next session, an alert is dropped.
   * @throws RetryableError for network failures and 4xx replies; TerminalError for 5xx replies.
   */
  send(message: MailMessage): Promise<void>;
  /** Closes pooled SMTP connections. */
  close(): Promise<void>;
}

/**
 * nodemailer, loaded when the first mail is built: most runs send none, and loading it costs ~50 ms at every
 * start otherwise. (CommonJS, so a synchronous require serves both the transport and the composer.)
 */
const requireLazily = createRequire(import.meta.url);
const nodemailer = (): typeof import('nodemailer') => requireLazily('nodemailer') as typeof import('nodemailer');
const MailComposer = (): typeof MailComposerType => requireLazily('nodemailer/lib/mail-composer') as typeof MailComposerType;

/**
 * The mailer of the configuration: SMTP through nodemailer when `smtpUrl` is set (pooled, so a burst of
 * welcome mails reuses connections), otherwise RFC 5322 files in `outbox`, for an MTA or a person to pick up.
 */
export function createMailer(config: MailConfig, logger: Logger): Mailer {
  return config.smtpUrl ? new SmtpMailer(config, logger) : new OutboxMailer(config, logger);
}

class SmtpMailer implements Mailer {
  readonly kind = 'smtp';
  private readonly transport?: Transporter;
  /** Why the SMTP URL cannot be used (a config built without loadConfig, which checks it). */
  private readonly unusable?: string;

  constructor(
    private readonly config: MailConfig,
    private readonly logger: Logger,
  ) {
    // WARNING: nodemailer gets options, never the URL string: from a string it falls back to url.parse(),
    // whose deprecation warning prints the whole URL with its password on stderr (see parseSmtpUrl).
    // A URL that cannot be used fails each send, not this constructor: mail is a side effect, and a
    // throwing constructor took the whole target, and so the run, down with it.
    let settings: SmtpSettings | undefined;
    try {
      settings = parseSmtpUrl(config.smtpUrl!.reveal());
    } catch (err) {
      this.unusable = `the SMTP URL (mail.smtpUrl) ${(err as Error).message}`;
    }
    // maxRequeues 0: nodemailer's pool otherwise sends a message again, up to 5 times with a back-off, when the
    // server closes the connection under it (a server that drops every connection made one send 6 connections
    // and seconds long), while a refused connection fails at once. One attempt per send either way: pbxsync's
    // retry of a mail is that it stays pending (README, `mail`), and a retry here multiplied each of those.
    if (settings) this.transport = nodemailer().createTransport({ ...settings, pool: true, maxConnections: 2, maxRequeues: 0 });
  }

  async send(message: MailMessage): Promise<void> {
    if (!this.transport) throw new TerminalError(`sending mail to ${message.to} failed: ${this.unusable}`, { code: 'SMTP' });
    try {
      await this.transport.sendMail({
        from: message.from ?? this.config.from,
        to: message.to,
        subject: message.subject,
        text: message.text,
        html: message.html,
      });
      this.logger.debug('mail sent', { to: message.to, subject: message.subject });
    } catch (err) {
      throw classifySmtpError(err, message.to);
    }
  }

  async close(): Promise<void> {
    this.transport?.close();
  }
}

/**
 * Maps a nodemailer error to our taxonomy. 5xx replies are permanent (bad recipient, refused sender);
 * everything else (4xx, connection, timeout, TLS) may pass on a later try. The message carries the
 * server's reply, never the SMTP URL (it may hold a password).
 */
export function classifySmtpError(err: unknown, to: string): Error {
  const e = err as { responseCode?: number; code?: string; message?: string; response?: unknown };
  // redact(): a reply or a connection error may echo what the client sent (the password).
  const detail = redact(e.responseCode ? `server replied ${e.responseCode}: ${replyOnce(e.message ?? '', e.response)}`.trim() : describeError(err));
  const message = `sending mail to ${to} failed: ${detail}`;
  if (typeof e.responseCode === 'number' && e.responseCode >= 500) return new TerminalError(message, { cause: err, code: 'SMTP' });
  if (e.code === 'EAUTH') return new TerminalError(message, { cause: err, code: 'SMTP' });
  return new RetryableError(message, { cause: err, code: 'SMTP' });
}

/**
 * nodemailer appends the server's reply to its error message, also to one that quotes the reply already ("Invalid
 * greeting. response=421 Busy: 421 Busy"): the reply once, without the appended copy.
 */
function replyOnce(message: string, response: unknown): string {
  if (typeof response !== 'string' || !response) return message;
  const suffix = `: ${response}`;
  const head = message.endsWith(suffix) ? message.slice(0, -suffix.length) : undefined;
  return head !== undefined && head.includes(response) ? head : message;
}

class OutboxMailer implements Mailer {
  readonly kind = 'outbox';
  private ready?: Promise<unknown>;

  constructor(
    private readonly config: MailConfig,
    private readonly logger: Logger,
  ) {}

  async send(message: MailMessage): Promise<void> {
    const outbox = this.config.outbox;
    if (!this.ready) {
      const ready = fs.mkdir(outbox, { recursive: true });
      // Forget a failed mkdir so the next send tries again; the handler also keeps the rejection handled
      // until it is awaited below.
      ready.catch(() => {
        if (this.ready === ready) this.ready = undefined;
      });
      this.ready = ready;
    }
    const ready = this.ready;
    // MailComposer builds the same MIME message the SMTP transport would send (Date, Message-ID, encoded
    // headers) at about half the cost of a stream transport; CRLF line ends as RFC 5322 requires.
    const Composer = MailComposer();
    const raw = await new Composer({
      from: message.from ?? this.config.from,
      to: message.to,
      subject: message.subject,
      text: message.text,
      html: message.html,
      textEncoding: 'quoted-printable',
      newline: 'windows',
    }).compile().build();
    const name = outboxFileName(message.extension);
    const file = path.join(outbox, name);
    // Written under a dot-name, then renamed: whatever picks up *.eml never sees half a message.
    const temp = path.join(outbox, `.${name}.tmp`);
    try {
      await ready;
      // 0600: the message holds the user's password.
      await fs.writeFile(temp, raw, { mode: 0o600 });
      await fs.rename(temp, file);
    } catch (err) {
      await fs.rm(temp, { force: true }).catch(() => undefined);
      throw new RetryableError(`writing mail to ${message.to} into the outbox ${outbox} failed: ${describeError(err)}`, { cause: err });
    }
    this.logger.debug('mail written to outbox', { to: message.to, file });
  }

  async close(): Promise<void> {}
}

/** `20260314T101500123Z-1001-9f3a1c2b.eml`: sortable by time, names the extension, never collides. */
export function outboxFileName(extension: string | undefined, now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:.]/g, '');
  const ext = extension && /^[0-9A-Za-z_-]{1,32}$/.test(extension) ? extension : 'mail';
  return `${stamp}-${ext}-${crypto.randomBytes(4).toString('hex')}.eml`;
}
