/** The mapping engine: mapping files compiled into pure Identity → DesiredUser functions. */
export * from './types.js';
export * from './numbering.js';
export { loadMapping, validateMappingFile, parseMapping, mappingSchemaPath, type MappingOptions } from './load.js';
export { normalizeMac, toE164, splitNumbers } from './phone.js';
export type { MappingSpec } from './spec.js';
