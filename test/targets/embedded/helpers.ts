import fs from 'node:fs/promises';
import { newUserFields } from '../../../src/model/index.js';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import winston from 'winston';
import type { ExecutionContext } from 'ava';
import type { MailConfig } from '../../../src/config/types.js';
import { silentLogger, type Logger } from '../../../src/log.js';
import type { Mailer, MailMessage } from '../../../src/mail/mailer.js';
import type { NumberingPolicy } from '../../../src/reconcile/types.js';
import { EmbeddedTarget, type EmbeddedTargetOptions } from '../../../src/targets/embedded/target.js';
import type { CreateUserInput } from '../../../src/targets/types.js';

/** A fresh temp folder, removed when the test ends. */
export async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pbxsync-embedded-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Builder of a createUser input: a valid user, overridden as the test needs. */
export function userInput(overrides: Partial<CreateUserInput> = {}): CreateUserInput {
  return {
    ...newUserFields(),
    extension: '1001',
    firstName: 'Anna',
    lastName: 'Smith',
    sendWelcome: false,
    ...overrides,
  };
}

/** Numbering with one reserved range (1900-1999) and one configured emergency number (110). */
export const NUMBERING: NumberingPolicy = { ranges: [{ from: '1000', to: '1999' }], reserved: [{ from: '1900', to: '1999' }], emergency: ['110'] };

/** Mail settings writing to `<dir>/outbox`. */
export function mailConfig(dir: string, overrides: Partial<MailConfig> = {}): MailConfig {
  return { welcome: true, alertsTo: [], from: 'PBX <pbx@example.com>', outbox: path.join(dir, 'outbox'), ...overrides };
}

/** Opens an EmbeddedTarget on `<dir>/pbx.json`, closed when the test ends. */
export async function openTarget(
  t: ExecutionContext,
  dir: string,
  options: Partial<EmbeddedTargetOptions> = {},
): Promise<EmbeddedTarget> {
  const target = await EmbeddedTarget.fromConfig(
    { type: 'embedded', storeFile: path.join(dir, 'pbx.json') },
    { numbering: NUMBERING, mail: mailConfig(dir), logger: silentLogger(), webClientUrl: 'https://pbx.example.com', ...options },
  );
  t.teardown(() => target.close().catch(() => undefined));
  return target;
}

/** A mailer that records messages, or fails while `failing` is true. */
export class RecordingMailer implements Mailer {
  readonly kind = 'outbox';
  readonly sent: MailMessage[] = [];
  failing = false;
  /** Sends tried, failed ones included. */
  attempts = 0;
  async send(message: MailMessage): Promise<void> {
    this.attempts++;
    if (this.failing) throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:25'), { code: 'ECONNREFUSED' });
    this.sent.push(message);
  }
  async close(): Promise<void> {}
}

/** A logger that keeps its JSON lines (no redaction: a secret that reaches it shows up in `lines`). */
export function capturingLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const logger = winston.createLogger({
    level: 'debug',
    format: winston.format.json(),
    transports: [
      new winston.transports.Stream({
        stream: new Writable({
          write(chunk: Buffer, _encoding, done) {
            lines.push(chunk.toString());
            done();
          },
        }),
      }),
    ],
  });
  return { logger, lines };
}

/** Collects an async iterable. */
export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

/** Parses an RFC 5322 message: unfolded headers (lower-case names) and the decoded text/plain part (or body). */
export function parseEml(raw: string): { headers: Record<string, string>; text: string; html: string; raw: string } {
  const split = raw.indexOf('\r\n\r\n');
  const headers: Record<string, string> = {};
  for (const line of raw.slice(0, split).replace(/\r\n[ \t]+/g, ' ').split('\r\n')) {
    const i = line.indexOf(':');
    headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
  }
  if (!/^multipart\//i.test(headers['content-type'] ?? '')) {
    const body = raw.slice(split + 4);
    const text = /quoted-printable/i.test(headers['content-transfer-encoding'] ?? '') ? decodeQuotedPrintable(body) : body.replace(/\r\n/g, '\n');
    return { headers, text, html: '', raw };
  }
  const part = (type: string): string => {
    const m = new RegExp(`Content-Type: ${type}[^\\r]*\\r\\nContent-Transfer-Encoding: quoted-printable\\r\\n\\r\\n([\\s\\S]*?)\\r\\n--`).exec(raw);
    return m ? decodeQuotedPrintable(m[1]) : '';
  };
  return { headers, text: part('text/plain'), html: part('text/html'), raw };
}

function decodeQuotedPrintable(body: string): string {
  const bytes = Buffer.from(body.replace(/=\r\n/g, '').replace(/=([0-9A-F]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1');
  return bytes.toString('utf8').replace(/\r\n/g, '\n');
}
