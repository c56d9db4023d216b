/**
 * Worker-thread side of {@link openCsvFileThreaded} (threaded.ts): runs the ordinary reader
 * ({@link openCsvFile}) on a file and posts what it reads to the thread that started it. Not an entry point
 * of its own.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { CsvFileError, openCsvFilePacked, type CsvRow, type PackedRow } from './client.js';
import { ROWS_PER_BATCH, BATCHES_AHEAD, type ReaderMessage, type ReaderRequest, type WorkerInput } from './threaded.js';

const port = parentPort!;
const input = workerData as WorkerInput;

/** Batches the reading thread may still take before this one waits (flow control: memory stays bounded). */
let credits = BATCHES_AHEAD;
let wake: (() => void) | undefined;
port.on('message', (m: ReaderRequest) => {
  if (m === 'more') {
    credits++;
    wake?.();
    wake = undefined;
  }
});

function post(message: ReaderMessage): void {
  port.postMessage(message);
}

async function credit(): Promise<void> {
  while (credits === 0) await new Promise<void>((resolve) => (wake = resolve));
  credits--;
}

async function main(): Promise<void> {
  let csv;
  try {
    csv = await openCsvFilePacked(input.file, input.options);
  } catch (err) {
    const fileError = err instanceof CsvFileError;
    post({ type: 'refused', message: (err as Error).message, reason: fileError ? err.reason : undefined, fileError });
    return;
  }
  const { header, headerLine, encoding, bom, delimiter } = csv;
  post({ type: 'open', header, headerLine, encoding, bom, delimiter });
  let batch: Array<CsvRow | PackedRow> = [];
  const send = async (): Promise<void> => {
    if (batch.length === 0) return;
    await credit();
    post({ type: 'rows', rows: batch });
    batch = [];
  };
  try {
    for await (const parsed of csv.batches) {
      if (batch.length === 0) batch = parsed;
      else for (let i = 0; i < parsed.length; i++) batch.push(parsed[i]);
      if (batch.length >= ROWS_PER_BATCH) await send();
    }
    await send();
    post({ type: 'end' });
  } catch (err) {
    // The rows read before the failure still count (the in-thread reader delivers them too).
    await send();
    post({ type: 'failed', message: (err as Error).message });
  } finally {
    await csv.close();
  }
}

await main();
// Let the thread end once the last message is out (the listener above would keep it alive).
port.unref();
