import { readFileSync } from 'node:fs';
import path from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { ConfigError } from '../errors.js';
import { errorMap, toConfigError } from './issues.js';
import { resolvePaths } from './paths.js';
import { readProblem } from './readProblem.js';
import { type Config, configSchema } from './schema.js';

export function defaultConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.CRYOMIX_WATCH_CONFIG || '/etc/cryomix-watch/config.yaml';
}

/** Reads, validates and resolves the config; any problem is one `ConfigError`. */
export function loadConfig(file: string): Config {
  const absolute = path.resolve(file);
  let text: string;
  try {
    text = readFileSync(absolute, 'utf8');
  } catch (error) {
    // Only a missing file suggests the wrong path was used, rather than a broken file.
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    const hint = missing ? ' (pass --config FILE or set CRYOMIX_WATCH_CONFIG)' : '';
    throw new ConfigError('', `cannot read ${absolute}: ${readProblem(error)}${hint}`);
  }
  return parseConfig(text, path.dirname(absolute), absolute);
}

/**
 * `baseDir` anchors relative paths; `file` only names the source in YAML
 * syntax errors.
 */
export function parseConfig(text: string, baseDir: string, file?: string): Config {
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { lineCounter, prettyErrors: false });
  // Warnings (an unknown tag, say) change what a value means: refuse them too.
  const syntax = document.errors[0] ?? document.warnings[0];
  if (syntax) {
    const { line } = lineCounter.linePos(syntax.pos[0]);
    throw new ConfigError('', `${file === undefined ? '' : `${file} `}line ${line}: ${syntax.message}`);
  }
  let data: unknown;
  try {
    data = document.toJS();
  } catch (error) {
    // toJS throws on alias bombs, which parse cleanly.
    const message = error instanceof Error ? error.message : String(error);
    throw new ConfigError('', file === undefined ? message : `${file}: ${message}`);
  }
  const result = configSchema.safeParse(data ?? {}, { error: errorMap, reportInput: true });
  if (!result.success) throw toConfigError(result.error);
  return resolvePaths(result.data, baseDir);
}
