/**
 * The CSV source connector: the `Source` the engine reads. Files arrive one by one (drop folder or
 * `pbxsync import FILE`) and are named by `ReadOptions.input`.
 */
import path from 'node:path';
import type { SourceConfig } from '../../src/config/types.js';
import { ConfigError } from '../../src/errors/index.js';
import type { ReadOptions, Source, SourceEvent } from '../../src/model/index.js';
import { readCsvFile } from './read.js';

/**
 * Creates the connector of a `type: csv` source.
 *
 * `read({ input })` reads that file (relative paths resolve against the working directory). Without `input`
 * there is nothing to read: the stream is just `end` with mode `partial` and complete true, so it changes and
 * removes nothing. Drop-folder files are read one at a time, with `input` set, by the watcher's callback; a
 * full read (the nightly reconciliation, `pbxsync sync --full`) gets the copy of the input the source applied
 * last from the engine (see src/engine/lastApplied.ts), and comes here without one only when none is recorded.
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
      if (options.input) {
        const file = path.resolve(options.input);
        return readCsvFile({ source: config.name, file, name: options.inputName && path.resolve(options.inputName), settings, signal: options.signal });
      }
      return nothingToRead(
        options.full ? 'no input recorded as applied by this source (none applied yet, or none since an upgrade); nothing to reconcile until a file is applied' : undefined,
      );
    },
  };
}

async function* nothingToRead(note?: string): AsyncGenerator<SourceEvent> {
  yield note ? { type: 'end', mode: 'partial', complete: true, note } : { type: 'end', mode: 'partial', complete: true };
}
