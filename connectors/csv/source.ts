/**
 * The CSV source connector: the `Source` the engine reads. Files arrive one by one (drop folder or
 * `pbxsync import FILE`) and are named by `ReadOptions.input`.
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { SourceConfig } from '../../src/config/types.js';
import { ConfigError } from '../../src/errors/index.js';
import type { ReadOptions, Source, SourceEvent } from '../../src/model/index.js';
import { readCsvFile } from './read.js';
import { isCandidateFile } from './dropFolder.js';
import type { CsvSourceSettings } from '../../src/config/types.js';

/**
 * Creates the connector of a `type: csv` source.
 *
 * `read({ input })` reads that file (relative paths resolve against the working directory). Without `input`:
 * - a full read (`full: true`: the nightly reconciliation, `pbxsync sync --full`) re-reads the file applied
 *   last (the newest in `processed/`), so changes made by hand in the PBX to managed users are corrected
 *   even when no new file arrives;
 * - an incremental poll has nothing to read: the stream is just `end` with mode `partial` and complete true,
 *   so it changes and removes nothing.
 * Drop-folder files are always read one at a time, with `input` set, by the watcher's callback.
 *
 * @throws ConfigError when the source is not a CSV source or has no `csv` settings.
 */
export function createCsvSource(config: SourceConfig): Source {
  if (config.type !== 'csv' || !config.csv) {
    throw new ConfigError(`source ${config.name} is not a CSV source with csv settings`, [
      {
        file: 'service.yml',
        path: `sources.${config.name}.${config.type !== 'csv' ? 'type' : 'csv'}`,
        message: config.type !== 'csv' ? `type is "${config.type}", not "csv"` : 'the csv settings are missing',
      },
    ]);
  }
  const settings = config.csv;
  return {
    name: config.name,
    kind: 'csv',
    mapping: config.mapping,
    read(options: ReadOptions): AsyncIterable<SourceEvent> {
      if (options.input) return readCsvFile({ source: config.name, file: path.resolve(options.input), settings, signal: options.signal });
      if (!options.full) return nothingToRead();
      return readLastApplied(config.name, settings, options.signal);
    },
  };
}

/** The file moved into `processed/` last: its ctime is the move (rename and link set it, writing does not). */
export async function lastAppliedFile(settings: Pick<CsvSourceSettings, 'processed' | 'extensions'>): Promise<string | undefined> {
  const names = await readdir(settings.processed).catch(() => [] as string[]);
  let best: { file: string; ctime: number } | undefined;
  for (const name of names) {
    if (name.includes('.report.') || !isCandidateFile(name, settings.extensions)) continue;
    const file = path.join(settings.processed, name);
    const st = await stat(file).catch(() => undefined);
    if (st?.isFile() && (!best || st.ctimeMs > best.ctime)) best = { file, ctime: st.ctimeMs };
  }
  return best?.file;
}

async function* readLastApplied(source: string, settings: CsvSourceSettings, signal?: AbortSignal): AsyncGenerator<SourceEvent> {
  const file = await lastAppliedFile(settings);
  if (!file) {
    yield { type: 'end', mode: 'partial', complete: true, note: 'no file applied yet; nothing to reconcile' };
    return;
  }
  yield* readCsvFile({ source, file, settings, signal });
}

async function* nothingToRead(): AsyncGenerator<SourceEvent> {
  yield { type: 'end', mode: 'partial', complete: true };
}
