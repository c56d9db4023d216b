export { loadConfig, validateConfig, type LoadConfigOptions, type ConfigValidation } from './load.js';
export { Secret, resolveSecretRef, type SecretRef, type SecretResolution, type ResolveSecretOptions } from './secret.js';
export { parseListen, isLoopbackHost, formatHostPort, type ListenAddress } from './listen.js';
export { parseSmtpUrl, type SmtpSettings } from './smtp.js';
export { DEFAULTS } from './normalise.js';
export { serviceSchema } from './schema.js';
export type * from './types.js';
