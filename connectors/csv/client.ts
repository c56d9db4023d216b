/**
 * CSV transport: bytes → text → rows. Knows about encodings, delimiters, quoting and line numbers; knows
 * nothing about identities (see transform.ts) or drop folders (see dropFolder.ts).
 *
 * Files come from Excel more often than not, so the reader is built around Excel's habits:
 * - "CSV UTF-8" has a BOM; plain "CSV" is Windows-1252 without any marker; "Unicode Text" is UTF-16LE with a
 *   BOM and tabs; German Excel separates with semicolons because the comma is its decimal mark.
 * - Excel may write a `sep=;` first line (and honours one when opening) to pin the delimiter.
 * - Word processors turn the quotes of the 3CX manual's role cell into typographic ones
 *   (`”<rolename=””system_owners””/>”`); those are ordinary characters here, not CSV quotes.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { isUtf8 } from 'node:buffer';
import iconv from 'iconv-lite';
import { Parser, type CsvError, type Info, type Options as ParseOptions } from 'csv-parse';
import { TerminalError } from '../../src/errors/index.js';
import { canonicalColumn, isThreeCxColumn } from './columns.js';

/** A text encoding the reader can decode. */
export type CsvEncoding = 'utf8' | 'utf16le' | 'utf16be' | 'windows1252';

/** A field delimiter the reader can split on. */
export type CsvDelimiter = ',' | ';' | '\t';

/** What is wrong with one row. The row is still delivered (with the cells that could be read). */
export interface CsvRowProblem {
  message: string;
  /** Canonical column name the problem is in, when known. */
  column?: string;
}

/** One data row. `line` is the 1-based physical line the row starts on (the header is usually line 1). */
export interface CsvRow {
  line: number;
  /** Canonical column name → trimmed cell. Columns whose header cell is empty are left out. */
  cells: Record<string, string>;
  /** Set when the row could not be read as a whole; its cells are then incomplete and must not be used. */
  problem?: CsvRowProblem;
}

/** Options of {@link openCsvFile}. */
export interface OpenCsvOptions {
  /** Default `auto`: BOM, then NUL pattern (BOM-less UTF-16), then UTF-8 if valid, else Windows-1252. */
  encoding?: 'auto' | CsvEncoding;
  /** Default `auto`: from a `sep=` line, else the most frequent of `,` `;` tab in the header line. */
  delimiter?: 'auto' | CsvDelimiter;
  signal?: AbortSignal;
  /** Read size in bytes (tests use small sizes to cross chunk boundaries). Default 64 KiB. */
  chunkSize?: number;
}

/**
 * A complete row as the worker thread of threaded.ts sends it: `[line, ...cells]`, the cells of the header's
 * named columns in header order.
 */
export type PackedRow = Array<string | number>;

/** An opened CSV file: the header is known, the rows stream on demand. */
export interface CsvFile<Row = CsvRow> {
  file: string;
  encoding: CsvEncoding;
  /** The file started with a byte order mark. */
  bom: boolean;
  delimiter: CsvDelimiter;
  /** Canonical column names in file order ('' for an empty header cell). */
  header: string[];
  /** Line the header is on. */
  headerLine: number;
  /** The rows are parsed on a worker thread (threaded.ts). */
  thread: boolean;
  /**
   * Data rows in file order; empty rows (also rows of bare delimiters, which Excel leaves below a table) are
   * skipped. Throws when the file cannot be read on (I/O error, abort): the read is then incomplete.
   * `rows` and `batches` are two views of one stream: iterate one of them, once.
   */
  rows: AsyncIterable<Row>;
  /**
   * The same rows in batches as the reader has them (a parsed chunk, a message from the reader thread), never
   * empty: a consumer that handles a batch synchronously pays one turn of the event loop per batch instead
   * of one per row. A failure comes after every row read before it.
   */
  batches: AsyncIterable<Row[]>;
  /** Releases the file handle; safe to call more than once and after the rows ended. */
  close(): Promise<void>;
}

/** The `rows` and `batches` of a {@link CsvFile}, both over one stream of batches. */
export function rowsAndBatches<Row>(batches: AsyncGenerator<Row[]>): { rows: AsyncIterable<Row>; batches: AsyncIterable<Row[]> } {
  async function* rows(): AsyncGenerator<Row> {
    // WARNING: not `yield* batch`: delegating to an array from an async generator goes through an
    // async-from-sync iterator, whose extra objects per row grew the young generation (+15 MB of RSS for a
    // 100,000-row file).
    for await (const batch of batches) for (let i = 0; i < batch.length; i++) yield batch[i];
  }
  return { rows: rows(), batches };
}

/** The file as a whole cannot be read as CSV (missing, empty, no header, ambiguous header). */
export class CsvFileError extends TerminalError {
  /**
   * What is wrong, without the file's name ("the file is empty"): for output that names the file already, such
   * as a read issue (`file: reason`) or a report. The message names the file.
   */
  readonly reason: string;

  constructor(message: string, options?: { cause?: unknown; reason?: string }) {
    super(message, { cause: options?.cause, code: 'CSV_FILE' });
    this.reason = options?.reason ?? message;
  }

  /** `cannot read FILE: …` for an error of the file system (or the decoder) met while opening `file`. */
  static unreadable(file: string, err: unknown): CsvFileError {
    const code = (err as NodeJS.ErrnoException | undefined)?.code;
    // Node's own message repeats the path ("ENOENT: no such file or directory, open '/x.csv'").
    const reason = code ? `cannot read the file (${code})` : `cannot read the file: ${(err as Error).message}`;
    return new CsvFileError(`cannot read ${file}: ${(err as Error).message}`, { cause: err, reason });
  }
}

const UTF8_BOM = [0xef, 0xbb, 0xbf];

/**
 * Recognises the encoding from the first bytes of a file, when they tell: a BOM (UTF-8, UTF-16LE/BE), or the
 * NUL-byte pattern of BOM-less UTF-16 (ASCII text in UTF-16LE is `X\0X\0…`; some exporters drop the BOM).
 * Returns `encoding: undefined` when only a scan of the whole file can decide between UTF-8 and
 * Windows-1252.
 */
export function sniffEncoding(head: Uint8Array): { encoding: CsvEncoding | undefined; bomLength: number } {
  if (head.length >= 3 && head[0] === UTF8_BOM[0] && head[1] === UTF8_BOM[1] && head[2] === UTF8_BOM[2]) {
    return { encoding: 'utf8', bomLength: 3 };
  }
  if (head.length >= 2 && head[0] === 0xff && head[1] === 0xfe) return { encoding: 'utf16le', bomLength: 2 };
  if (head.length >= 2 && head[0] === 0xfe && head[1] === 0xff) return { encoding: 'utf16be', bomLength: 2 };
  const pairs = Math.min(256, head.length >> 1);
  if (pairs >= 2) {
    let le = 0;
    let be = 0;
    for (let i = 0; i < pairs; i++) {
      const a = head[2 * i];
      const b = head[2 * i + 1];
      if (a !== 0 && b === 0) le++;
      else if (a === 0 && b !== 0) be++;
    }
    // Text files never contain NUL in UTF-8 or 1252, so a strong NUL pattern is UTF-16. 70% leaves room for
    // non-Latin characters (which have a non-zero high byte).
    if (le >= pairs * 0.7) return { encoding: 'utf16le', bomLength: 0 };
    if (be >= pairs * 0.7) return { encoding: 'utf16be', bomLength: 0 };
  }
  return { encoding: undefined, bomLength: 0 };
}

/**
 * Length of the prefix of `buf` that ends on a UTF-8 character boundary: a multi-byte sequence cut by the
 * chunk end is left for the next chunk.
 */
function completeUtf8Length(buf: Uint8Array): number {
  const n = buf.length;
  for (let i = n - 1; i >= 0 && i >= n - 4; i--) {
    const b = buf[i];
    if (b < 0x80) return n;
    if (b >= 0xc0) {
      const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2;
      return i + need > n ? i : n;
    }
  }
  return n;
}

/**
 * True when the file from `start` on is valid UTF-8. Excel's plain "CSV" is Windows-1252 and carries no
 * marker; its first non-ASCII byte may sit on the last line, so the whole file is checked before any row is
 * delivered (native `isUtf8`, chunk by chunk: cheap next to parsing, and no row is ever decoded twice).
 */
async function isFileUtf8(file: string, start: number, signal?: AbortSignal): Promise<boolean> {
  let carry: Buffer | undefined;
  const stream = createReadStream(file, { start, highWaterMark: 1 << 20, signal });
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    const buf = carry ? Buffer.concat([carry, chunk]) : chunk;
    const cut = completeUtf8Length(buf);
    if (!isUtf8(buf.subarray(0, cut))) return false;
    carry = cut < buf.length ? Buffer.from(buf.subarray(cut)) : undefined;
  }
  return carry === undefined || isUtf8(carry);
}

async function readHead(file: string, bytes: number, signal?: AbortSignal): Promise<Buffer> {
  const parts: Buffer[] = [];
  let total = 0;
  for await (const chunk of createReadStream(file, { start: 0, end: bytes - 1, signal }) as AsyncIterable<Buffer>) {
    parts.push(chunk);
    total += chunk.length;
  }
  return Buffer.concat(parts, total);
}

/** Detects the encoding of a file (see {@link OpenCsvOptions.encoding}) and the length of its BOM. */
export async function detectFileEncoding(
  file: string,
  signal?: AbortSignal,
): Promise<{ encoding: CsvEncoding; bomLength: number }> {
  const sniffed = sniffEncoding(await readHead(file, 512, signal));
  if (sniffed.encoding) return { encoding: sniffed.encoding, bomLength: sniffed.bomLength };
  return { encoding: (await isFileUtf8(file, 0, signal)) ? 'utf8' : 'windows1252', bomLength: 0 };
}

/**
 * Picks the delimiter of a header line: the most frequent of comma, semicolon and tab outside double quotes.
 * Ties (and a one-column header) go to the comma, then the semicolon.
 */
export function detectDelimiter(headerLine: string): CsvDelimiter {
  let comma = 0;
  let semicolon = 0;
  let tab = 0;
  let quoted = false;
  for (let i = 0; i < headerLine.length; i++) {
    const c = headerLine.charCodeAt(i);
    if (c === 34) quoted = !quoted;
    else if (quoted) continue;
    else if (c === 44) comma++;
    else if (c === 59) semicolon++;
    else if (c === 9) tab++;
  }
  if (tab > comma && tab > semicolon) return '\t';
  if (semicolon > comma) return ';';
  return ',';
}

/** `sep=;` as Excel writes it on the first line; returns the delimiter it names. */
function sepDirective(line: string): CsvDelimiter | undefined {
  const t = line.trim();
  if (t.length !== 5 || t.slice(0, 4).toLowerCase() !== 'sep=') return undefined;
  const d = t[4];
  return d === ',' || d === ';' || d === '\t' ? d : undefined;
}

/** Decoded text of the file as UTF-8 chunks (the parser always sees UTF-8). */
async function* utf8Chunks(
  file: string,
  encoding: CsvEncoding,
  start: number,
  chunkSize: number,
  signal?: AbortSignal,
): AsyncGenerator<Buffer> {
  const stream = createReadStream(file, { start, highWaterMark: chunkSize, signal });
  if (encoding === 'utf8') {
    yield* stream as AsyncIterable<Buffer>;
    return;
  }
  const decoder = iconv.getDecoder(encoding, { stripBOM: false });
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    const text = decoder.write(chunk);
    if (text) yield Buffer.from(text, 'utf8');
  }
  const tail = decoder.end();
  if (tail) yield Buffer.from(tail, 'utf8');
}

/** Start and end (-1: not yet seen) of the first non-empty line in `buf`. */
function firstLineBounds(buf: Buffer): { start: number; end: number } {
  let start = 0;
  while (start < buf.length && (buf[start] === 10 || buf[start] === 13)) start++;
  for (let i = start; i < buf.length; i++) {
    const c = buf[i];
    if (c === 10 || c === 13) return { start, end: i };
  }
  return { start, end: -1 };
}

/**
 * Opens a CSV file: detects encoding and delimiter, reads the header, and returns the rows as an
 * AsyncIterable that parses on demand (csv-parse, streaming; memory stays at one chunk of rows).
 *
 * Row rules: cells are trimmed; a row whose cell count differs from the header's, or whose quote never
 * closes, is delivered with a `problem` and parsing goes on with the next row.
 *
 * @throws CsvFileError when the file is missing, unreadable, empty, or its header is unusable.
 */
export async function openCsvFile(file: string, options: OpenCsvOptions = {}): Promise<CsvFile> {
  return open(file, options, false) as Promise<CsvFile>;
}

/**
 * {@link openCsvFile} for the reader thread (threaded.ts): complete rows come as {@link PackedRow}s, which skips
 * building a cells object that would only be taken apart again to be sent.
 */
export async function openCsvFilePacked(file: string, options: OpenCsvOptions = {}): Promise<CsvFile<CsvRow | PackedRow>> {
  return open(file, options, true);
}

async function open(file: string, options: OpenCsvOptions, packed: boolean): Promise<CsvFile<CsvRow | PackedRow>> {
  const signal = options.signal;
  const chunkSize = options.chunkSize ?? 64 * 1024;
  let size: number;
  try {
    const st = await stat(file);
    if (!st.isFile()) throw new CsvFileError(`${file} is not a file`, { reason: 'not a regular file' });
    size = st.size;
  } catch (err) {
    if (err instanceof CsvFileError) throw err;
    throw CsvFileError.unreadable(file, err);
  }
  if (size === 0) throw new CsvFileError(`${file} is empty`, { reason: 'the file is empty' });

  let encoding: CsvEncoding;
  let bomLength: number;
  try {
    const sniffed = sniffEncoding(await readHead(file, 512, signal));
    if (!options.encoding || options.encoding === 'auto') {
      encoding = sniffed.encoding ?? ((await isFileUtf8(file, 0, signal)) ? 'utf8' : 'windows1252');
      bomLength = sniffed.bomLength;
    } else {
      encoding = options.encoding;
      // A configured encoding still skips its own BOM, which would otherwise glue onto the first header.
      bomLength = sniffed.encoding === encoding ? sniffed.bomLength : 0;
    }
  } catch (err) {
    throw CsvFileError.unreadable(file, err);
  }

  const chunks = utf8Chunks(file, encoding, bomLength, chunkSize, signal);
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await chunks.return(undefined);
  };

  try {
    // Collect the first non-empty line to choose the delimiter before the parser exists.
    const pre: Buffer[] = [];
    let first: Buffer = Buffer.alloc(0);
    let bounds = { start: 0, end: -1 };
    while (bounds.end < 0 && first.length < 1 << 20) {
      const next = await chunks.next();
      if (next.done) break;
      pre.push(next.value);
      first = pre.length === 1 ? next.value : Buffer.concat([first, next.value]);
      bounds = firstLineBounds(first);
    }
    const lineEnd = bounds.end;
    const firstLine = first.toString('utf8', bounds.start, lineEnd < 0 ? first.length : lineEnd);
    let lineOffset = 0;
    let delimiter: CsvDelimiter;
    const sep = sepDirective(firstLine);
    if (sep && bounds.start === 0) {
      // Drop the `sep=` line; the header is on line 2 then.
      let skip = lineEnd < 0 ? first.length : lineEnd + 1;
      if (first[lineEnd] === 13 && first[lineEnd + 1] === 10) skip++;
      pre.length = 0;
      if (skip < first.length) pre.push(first.subarray(skip));
      lineOffset = 1;
      delimiter = options.delimiter && options.delimiter !== 'auto' ? options.delimiter : sep;
    } else {
      delimiter =
        options.delimiter && options.delimiter !== 'auto' ? options.delimiter : detectDelimiter(firstLine);
    }

    const parser = new CsvRowParser(delimiter, lineOffset, packed);
    for (const buf of pre) await parser.write(buf);
    while (!parser.headerSeen) {
      const next = await chunks.next();
      if (next.done) {
        await parser.end();
        break;
      }
      await parser.write(next.value);
    }
    if (!parser.headerSeen) throw new CsvFileError(`${file} has no header line`, { reason: 'no header line' });
    if (parser.headerError) throw new CsvFileError(`${file}: ${parser.headerError}`, { reason: parser.headerError });

    async function* batches(): AsyncGenerator<Array<CsvRow | PackedRow>> {
      try {
        for (;;) {
          const taken = parser.take();
          if (taken.length > 0) yield taken;
          if (parser.ended) return;
          if (signal?.aborted) throw signal.reason ?? new Error('aborted');
          const next = await chunks.next();
          if (next.done) await parser.end();
          else await parser.write(next.value);
        }
      } finally {
        await close();
      }
    }

    return {
      file,
      encoding,
      bom: bomLength > 0,
      delimiter,
      header: parser.header,
      headerLine: parser.headerLine,
      thread: false,
      ...rowsAndBatches(batches()),
      close,
    };
  } catch (err) {
    await close();
    if (err instanceof CsvFileError) throw err;
    throw CsvFileError.unreadable(file, err);
  }
}

/**
 * csv-parse's Parser with its output tapped: each record goes straight to `sink` together with the parser's
 * live counters (line, empty lines) at the moment the record completes, instead of into the readable side.
 * WARNING: csv-parse's `on_record` hook would give the same, but builds a fresh info object for every record,
 * which costs about a quarter of the parse time on a 100,000-row file.
 */
class RecordTap extends Parser {
  constructor(
    options: ParseOptions,
    private readonly sink: (record: string[], info: Info) => void,
  ) {
    super(options);
  }

  override push(chunk: unknown, encoding?: BufferEncoding): boolean {
    if (chunk === null) return super.push(chunk, encoding);
    this.sink(chunk as string[], this.info);
    return true;
  }
}

/**
 * Drives csv-parse by hand: chunks are written in, records come out through the tap (and broken ones
 * through `on_skip`) into a small queue, in file order. Records never reach the stream's readable side, so
 * nothing is buffered beyond one chunk's rows.
 */
class CsvRowParser {
  header: string[] = [];
  headerSeen = false;
  headerLine = 0;
  headerError: string | undefined;
  ended = false;
  /** Every column name with an empty value: the shape each row's cells are copied from. */
  private cellsTemplate: Record<string, string> = {};

  private readonly parser: RecordTap;
  private failure: Error | undefined;
  private queue: Array<CsvRow | PackedRow> = [];
  /** csv-parse's line count at the end of the last record. */
  private lastEndLine = 0;
  private lastEmptyLines = 0;
  /**
   * csv-parse counts a CRLF inside a quoted cell as two lines (it sees CR and LF separately); this is how many
   * lines it has over-counted so far.
   */
  private skew = 0;

  constructor(
    delimiter: CsvDelimiter,
    private readonly lineOffset: number,
    private readonly packed: boolean,
  ) {
    this.parser = new RecordTap(
      {
        delimiter,
        // Mixed line endings occur when files are concatenated; old Excel for Mac writes bare CR.
        record_delimiter: ['\r\n', '\n', '\r'],
        // A quote inside an unquoted cell is a character (`<rolename="users"/>` typed by hand), not an error.
        relax_quotes: true,
        // The cell count is checked here, against the header, so the row can be reported and skipped.
        relax_column_count: true,
        skip_empty_lines: true,
        skip_records_with_error: true,
        bom: false,
        on_skip: (err: CsvError | undefined) => {
          this.onSkip(err);
          return undefined;
        },
      },
      (record, info) => this.onRecord(record, info),
    );
    // Without a reader the parser's readable side could fill up and stall writes; nothing is pushed to it
    // (the tap swallows every record), but resume() makes that independent of csv-parse internals.
    this.parser.resume();
    // An 'error' event without a listener would crash the process; write()/end() report it instead.
    this.parser.on('error', (err) => {
      this.failure ??= err;
    });
  }

  /** Start line of the record that just ended, from csv-parse's counters. */
  private startLine(emptyLines: number): number {
    return this.lastEndLine + 1 + (emptyLines - this.lastEmptyLines) - this.skew + this.lineOffset;
  }

  private onRecord(record: string[], ctx: Info): void {
    const start = this.startLine(ctx.empty_lines);
    const n = record.length;
    // A record ending further down than the line after the previous one holds a line break inside a quoted
    // cell. Only such records are scanned, so ordinary rows pay nothing for it.
    let breakAt = -1;
    if (ctx.lines > this.lastEndLine + 1 + (ctx.empty_lines - this.lastEmptyLines)) {
      for (let i = 0; i < n; i++) {
        const cell = record[i];
        if (cell.indexOf('\n') === -1 && cell.indexOf('\r') === -1) continue;
        this.skew += countCrlf(cell);
        // 3CX columns never hold line breaks, and a cell that still starts with a quote is what csv-parse
        // (relax_quotes) leaves when a quote opened on one line is "closed" by a stray quote lines later.
        // Free-form extra columns (an address, notes) may legitimately span lines.
        const name = this.headerSeen ? this.header[i] ?? '' : '';
        if (breakAt < 0 && (isThreeCxColumn(name) || cell.trimStart().startsWith('"'))) breakAt = i;
      }
    }
    this.lastEndLine = ctx.lines;
    this.lastEmptyLines = ctx.empty_lines;
    if (!this.headerSeen) {
      this.setHeader(record, start);
      return;
    }
    const names = this.header;
    const width = names.length;
    if (this.packed && n === width && breakAt < 0) {
      const packed: PackedRow = [start];
      let blank = true;
      for (let i = 0; i < n; i++) {
        const value = record[i].trim();
        if (value.length !== 0) blank = false;
        if (names[i].length !== 0) packed.push(value);
      }
      if (!blank) this.queue.push(packed);
      return;
    }
    // WARNING: a copy of the template, not `{}` filled by keyed stores: V8 turns an object that gets more than
    // a dozen properties that way into a hash table, so every row (45 columns in the 3CX format) became one,
    // ~3x bigger and slower to read for the mapping. A short row keeps only the cells it has.
    const cells: Record<string, string> = n >= width ? { ...this.cellsTemplate } : {};
    let empty = true;
    const m = n < width ? n : width;
    for (let i = 0; i < m; i++) {
      const name = names[i];
      const value = record[i].trim();
      if (value.length !== 0) empty = false;
      if (name.length !== 0) cells[name] = value;
    }
    if (n === width && breakAt < 0) {
      if (!empty) this.queue.push({ line: start, cells });
      return;
    }
    for (let i = m; i < n && empty; i++) if (record[i].trim().length !== 0) empty = false;
    if (empty) return;
    let problem: CsvRowProblem;
    if (breakAt >= 0) {
      const endLine = ctx.lines - this.skew + this.lineOffset;
      problem = {
        message: `the cell spans lines ${start}-${endLine}; a quote is probably not closed`,
        column: names[breakAt] || undefined,
      };
    } else if (n < width) {
      problem = { message: `expected ${width} cells as in the header, found ${n}`, column: names[n] || undefined };
    } else {
      problem = { message: `expected ${width} cells as in the header, found ${n} (an unquoted delimiter in a cell?)` };
    }
    this.queue.push({ line: start, cells, problem });
  }

  private onSkip(err: CsvError | undefined): void {
    const info = (err ?? {}) as { lines?: number; empty_lines?: number; column?: number | string | null };
    const start = this.startLine(info.empty_lines ?? this.lastEmptyLines);
    if (typeof info.lines === 'number') {
      this.lastEndLine = info.lines;
      this.lastEmptyLines = info.empty_lines ?? this.lastEmptyLines;
    }
    const column =
      typeof info.column === 'number' && this.headerSeen ? this.header[info.column] || undefined : undefined;
    let message: string;
    if (err?.code === 'CSV_QUOTE_NOT_CLOSED') {
      // Only raised at the end of the file: everything after the quote became one unfinished cell.
      message = `a quote opened on line ${start} is never closed; nothing after it could be read`;
    } else {
      message = `cannot parse the row: ${err?.message ?? 'unknown error'}`;
    }
    if (!this.headerSeen) {
      this.headerSeen = true;
      this.headerLine = start;
      this.headerError = `the header line cannot be read: ${message}`;
      return;
    }
    this.queue.push({ line: start, cells: {}, problem: { message, column } });
  }

  private setHeader(record: string[], line: number): void {
    this.headerSeen = true;
    this.headerLine = line;
    const seen = new Map<string, number>();
    this.header = record.map((raw, i) => {
      let name = canonicalColumn(raw);
      // `__proto__` as a key would replace the prototype of the cells object instead of adding a cell.
      if (name === '__proto__') name = '';
      if (name === '') return name;
      const before = seen.get(name);
      if (before === undefined) {
        seen.set(name, i);
        return name;
      }
      if (isThreeCxColumn(name)) {
        this.headerError ??= `column ${name} appears twice in the header (columns ${before + 1} and ${i + 1})`;
        return name;
      }
      // Two free-form columns of the same name ("Notes", "Notes") are common and harmless: number them.
      let k = 2;
      while (seen.has(`${name} (${k})`)) k++;
      const renamed = `${name} (${k})`;
      seen.set(renamed, i);
      return renamed;
    });
    this.cellsTemplate = Object.fromEntries(this.header.filter((name) => name !== '').map((name) => [name, '']));
  }

  /** The rows parsed since the last call (an empty array when none); empties the queue. */
  take(): Array<CsvRow | PackedRow> {
    const q = this.queue;
    if (q.length > 0) this.queue = [];
    return q;
  }

  write(buf: Buffer): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.parser.write(buf, (err) => (err ? reject(err) : resolve()));
    });
  }

  end(): Promise<void> {
    if (this.ended) return Promise.resolve();
    this.ended = true;
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.parser.end(() => (this.failure ? reject(this.failure) : resolve()));
    });
  }
}

function countCrlf(cell: string): number {
  let count = 0;
  for (let i = cell.indexOf('\r\n'); i !== -1; i = cell.indexOf('\r\n', i + 2)) count++;
  return count;
}
