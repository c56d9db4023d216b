/**
 * Builders for the CSV connector tests: settings, temp folders and CSV files in any encoding, PBX users.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { newUserFields } from '../../../src/model/index.js';
import os from 'node:os';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import iconv from 'iconv-lite';
import type { CsvSourceSettings } from '../../../src/config/types.js';
import type { PbxUser, SourceEvent } from '../../../src/model/index.js';

/** A temp folder removed after the test. */
export async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pbxsync-csv-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** CSV settings for a drop folder under `dir`, with overrides. */
export function csvSettings(dir: string, overrides: Partial<CsvSourceSettings> = {}): CsvSourceSettings {
  return {
    folder: path.join(dir, 'in'),
    processed: path.join(dir, 'in', 'processed'),
    failed: path.join(dir, 'in', 'failed'),
    mode: 'upsert',
    keyColumn: 'auto',
    delimiter: 'auto',
    encoding: 'auto',
    report: 'json',
    stableMs: 150,
    extensions: ['.csv', '.txt'],
    ...overrides,
  };
}

/** How {@link csvBytes} writes a file. */
export interface CsvFileSpec {
  encoding?: 'utf8' | 'utf16le' | 'utf16be' | 'windows1252';
  bom?: boolean;
  eol?: string;
  /** Ends the last line with `eol` (default true). */
  trailingEol?: boolean;
}

/** The bytes of a CSV file made of `lines` (already delimited), in the given encoding. */
export function csvBytes(lines: string[], spec: CsvFileSpec = {}): Buffer {
  const eol = spec.eol ?? '\r\n';
  const text = lines.join(eol) + (spec.trailingEol === false ? '' : eol);
  const encoding = spec.encoding ?? 'utf8';
  const body = iconv.encode(text, encoding, { addBOM: false });
  if (!spec.bom) return body;
  const bom =
    encoding === 'utf8'
      ? Buffer.from([0xef, 0xbb, 0xbf])
      : encoding === 'utf16le'
        ? Buffer.from([0xff, 0xfe])
        : encoding === 'utf16be'
          ? Buffer.from([0xfe, 0xff])
          : Buffer.alloc(0);
  return Buffer.concat([bom, body]);
}

/** Writes a CSV file (see {@link csvBytes}) and returns its path. */
export async function writeCsv(dir: string, name: string, lines: string[], spec: CsvFileSpec = {}): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, csvBytes(lines, spec));
  return file;
}

/** A valid PBX user with overrides. */
export function pbxUser(overrides: Partial<PbxUser> = {}): PbxUser {
  return {
    id: 'u-1',
    extension: '1001',
    ...newUserFields(),
    firstName: 'Anna',
    lastName: 'Müller',
    email: 'anna@example.com',
    mobile: '+4915112345678',
    language: 'de',
    department: 'Sales',
    ...overrides,
  };
}

/** Drains an async iterable into an array. */
export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of items) out.push(x);
  return out;
}

/** Splits source events by type. */
export function byType(events: SourceEvent[]) {
  return {
    identities: events.flatMap((e) => (e.type === 'identity' ? [e.identity] : e.type === 'identities' ? e.identities : [])),
    issues: events.flatMap((e) => (e.type === 'issue' ? [e.issue] : [])),
    ends: events.flatMap((e) => (e.type === 'end' ? [e] : [])),
  };
}

/** Resolves after `ms`. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
