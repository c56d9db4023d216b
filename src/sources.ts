import type { Source } from './model/index.js';
import type { SourceConfig } from './config/types.js';
import { ConfigError } from './errors/index.js';
import { createCsvSource } from '../connectors/csv/source.js';

/** Builds a source connector from its configuration; one factory per source `type`. */
type SourceFactory = (config: SourceConfig) => Source;

const FACTORIES: Record<string, SourceFactory> = {
  csv: createCsvSource,
};

/** Creates the connector for a configured source; ConfigError for a type this build has no connector for. */
export function createSource(config: SourceConfig): Source {
  const factory = FACTORIES[config.type];
  if (!factory) {
    throw new ConfigError(`source ${config.name}: type "${config.type}" has no connector in this version of pbxsync`, [
      { file: 'service.yml', path: `sources.${config.name}.type`, message: `no connector for type "${config.type}"` },
    ]);
  }
  return factory(config);
}
