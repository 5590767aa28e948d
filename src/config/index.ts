export { CREDENTIAL_NAME, loadApiKey } from './apiKey.js';
export type { ListenAddress } from './fields.js';
export { defaultConfigPath, loadConfig, parseConfig } from './load.js';
export { isInside, mastersDirectory } from './paths.js';
export { type Config, type FolderConfig, LOG_LEVELS, MASTER_FILES, type MasterFile, type MasteringConfig, type PostgresConfig } from './schema.js';
