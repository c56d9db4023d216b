/**
 * The CSV reader on a worker thread. Parsing a large export is most of the CPU a CSV sync needs before it can
 * plan; on a second core it overlaps with the mapping of the rows already read instead of preceding it.
 *
 * The worker runs the ordinary reader ({@link openCsvFile}, read-worker.ts) and sends its rows in batches;
 * what arrives here is what the in-thread reader delivers (header, encoding, line numbers, problems), row for
 * row. Small files are not worth a thread (starting one costs a few tens of milliseconds): see
 * {@link openCsvFileAuto}.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { CsvFileError, openCsvFile, type CsvDelimiter, type CsvEncoding, type CsvFile, type CsvRow, type OpenCsvOptions, type PackedRow, rowsAndBatches } from './client.js';

/**
 * Rows per message (at least: the parsed chunks that fill it go whole). A batch travels by structured clone:
 * complete rows as `[line, ...cells]` arrays, which are about twice as fast to receive as cells objects (or as
 * JSON.parse of the same rows).
 */
export const ROWS_PER_BATCH = 500;

/** Batches the worker may read ahead of the rows taken here (bounds the memory a slow consumer costs). */
export const BATCHES_AHEAD = 8;

/** Files from this size on are read on a worker thread by {@link openCsvFileAuto}. */
export const THREAD_MIN_BYTES = 1 << 20;

/** What the worker is given. */
export interface WorkerInput {
  file: string;
  options: Pick<OpenCsvOptions, 'encoding' | 'delimiter' | 'chunkSize'>;
}

/** Sent to the worker: one more batch may be sent. */
export type ReaderRequest = 'more';

/** Sent by the worker, in this order: `open` or `refused`; then `rows`…; then `end` or `failed`. */
export type ReaderMessage =
  | { type: 'open'; header: string[]; headerLine: number; encoding: CsvEncoding; bom: boolean; delimiter: CsvDelimiter }
  | { type: 'refused'; message: string; reason?: string; fileError: boolean }
  | { type: 'rows'; rows: Array<CsvRow | PackedRow> }
  | { type: 'end' }
  | { type: 'failed'; message: string };

/** True when this module runs from its TypeScript source (the tests, through tsx) instead of dist. */
const fromSource = path.extname(fileURLToPath(import.meta.url)) === '.ts';

function startWorker(workerData: WorkerInput): Worker {
  const script = new URL(`./read-worker${fromSource ? '.ts' : '.js'}`, import.meta.url);
  if (!fromSource) return new Worker(script, { workerData });
  // WARNING: Node 20 does not carry an `--import` loader into worker threads (tsx issue #354), so a worker
  // started from the TypeScript source registers tsx itself before loading its script. Never taken in dist.
  const bootstrap = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(script.href)}); });`;
  return new Worker(bootstrap, { eval: true, workerData });
}

/**
 * Opens a CSV file like {@link openCsvFile} and reads it on a worker thread. The same rows arrive in the same
 * order with the same line numbers and problems; the same errors are thrown (a CsvFileError when the file
 * cannot be opened, the reading error or the abort reason when reading stops midway).
 */
export async function openCsvFileThreaded(file: string, options: OpenCsvOptions = {}): Promise<CsvFile> {
  const { signal } = options;
  signal?.throwIfAborted();
  const input: WorkerInput = { file, options: { encoding: options.encoding, delimiter: options.delimiter, chunkSize: options.chunkSize } };
  const worker = startWorker(input);
  const inbox = new Inbox(worker, signal);
  const close = async (): Promise<void> => {
    inbox.stop();
    await worker.terminate();
  };

  let opened: Extract<ReaderMessage, { type: 'open' }>;
  try {
    const first = await inbox.next();
    if (first.type === 'refused') throw first.fileError ? new CsvFileError(first.message, { reason: first.reason }) : CsvFileError.unreadable(file, new Error(first.message));
    if (first.type !== 'open') throw new CsvFileError(`cannot read ${file}: the reader thread sent ${first.type} first`, { reason: `the reader thread sent ${first.type} first` });
    opened = first;
  } catch (err) {
    await close();
    if (err instanceof CsvFileError) throw err;
    throw CsvFileError.unreadable(file, err);
  }

  const names = opened.header.filter((name) => name !== '');
  // Rows are built like the in-thread reader builds them: a copy of one template, so every row shares one
  // hidden class (keyed stores into a fresh object would make each row a hash table).
  const template: Record<string, string> = Object.fromEntries(names.map((name) => [name, '']));

  async function* batches(): AsyncGenerator<CsvRow[]> {
    try {
      for (;;) {
        const message = await inbox.next();
        if (message.type === 'end') return;
        if (message.type === 'failed') throw new Error(message.message);
        if (message.type !== 'rows') throw new Error(`the reader thread sent ${message.type} among the rows`);
        // Handed back at once: the worker parses the next batch while this one is mapped.
        worker.postMessage('more' satisfies ReaderRequest);
        const batch = message.rows;
        const out: CsvRow[] = new Array(batch.length);
        for (let i = 0; i < batch.length; i++) {
          const entry = batch[i];
          if (!Array.isArray(entry)) {
            out[i] = entry;
            continue;
          }
          const cells = { ...template };
          for (let k = 0; k < names.length; k++) cells[names[k]] = entry[k + 1] as string;
          out[i] = { line: entry[0] as number, cells };
        }
        if (out.length > 0) yield out;
      }
    } finally {
      await close();
    }
  }

  return {
    file,
    encoding: opened.encoding,
    bom: opened.bom,
    delimiter: opened.delimiter,
    header: opened.header,
    headerLine: opened.headerLine,
    thread: true,
    ...rowsAndBatches(batches()),
    close,
  };
}

/**
 * {@link openCsvFileThreaded} for files of {@link THREAD_MIN_BYTES} and more, {@link openCsvFile} for smaller
 * ones (and whenever the size cannot be read: the in-thread reader then reports why).
 */
export async function openCsvFileAuto(file: string, options: OpenCsvOptions = {}): Promise<CsvFile> {
  const size = await stat(file).then((s) => (s.isFile() ? s.size : 0)).catch(() => 0);
  return size >= THREAD_MIN_BYTES ? openCsvFileThreaded(file, options) : openCsvFile(file, options);
}

/** The worker's messages in order, with its crash, an early exit and the abort signal turned into errors. */
class Inbox {
  private readonly queue: ReaderMessage[] = [];
  private waiting?: { resolve: (m: ReaderMessage) => void; reject: (err: unknown) => void };
  private failure?: unknown;
  private readonly onAbort = (): void => this.fail(this.signal?.reason ?? new Error('aborted'));

  constructor(
    worker: Worker,
    private readonly signal: AbortSignal | undefined,
  ) {
    worker.on('message', (m: ReaderMessage) => {
      if (this.waiting) {
        const { resolve } = this.waiting;
        this.waiting = undefined;
        resolve(m);
      } else {
        this.queue.push(m);
      }
    });
    worker.on('error', (err) => this.fail(err));
    // Messages sent before an exit arrive before the exit event, so an exit while someone still waits means
    // the worker stopped without its last word.
    worker.on('exit', (code) => this.fail(new Error(`the CSV reader thread stopped (exit code ${code})`)));
    signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  next(): Promise<ReaderMessage> {
    if (this.signal?.aborted) return Promise.reject(this.signal.reason ?? new Error('aborted'));
    const m = this.queue.shift();
    if (m) return Promise.resolve(m);
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => (this.waiting = { resolve, reject }));
  }

  private fail(err: unknown): void {
    this.failure ??= err;
    if (this.waiting) {
      const { reject } = this.waiting;
      this.waiting = undefined;
      reject(this.failure);
    }
  }

  stop(): void {
    this.signal?.removeEventListener('abort', this.onAbort);
  }
}
