import { createRequire } from 'node:module';
import { pino, type Logger } from 'pino';
import type PinoPretty from 'pino-pretty';
import { redactSignedUrls } from '../net/redact.js';

export type LogFormat = 'json' | 'pretty';

/**
 * Removes secrets from a finished log line. Redaction happens here, on the
 * serialized text, so no field, error message or stack trace can carry the
 * API key or a signature past it, whatever code logged it.
 */
export function scrubSecrets(line: string, secrets: readonly string[]): string {
  let scrubbed = redactSignedUrls(line);
  for (const secret of secrets) {
    if (secret.length < 4) continue;
    // As written, and as JSON writes it inside a string (a quote or backslash in it escaped).
    for (const form of new Set([secret, JSON.stringify(secret).slice(1, -1)])) scrubbed = scrubbed.split(form).join('<redacted>');
  }
  return scrubbed;
}

export interface LoggerOptions {
  level: string;
  format: LogFormat;
  /** Values that must never be printed (the API key). */
  secrets: readonly string[];
  destination?: NodeJS.WritableStream;
}

/** Loaded only when asked for: it weighs about 9 MB, which a service logging JSON never needs. */
function loadPretty(): typeof PinoPretty {
  return createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty;
}

export function createLogger(options: LoggerOptions): Logger {
  const destination = options.destination ?? process.stdout;
  const stream =
    options.format === 'pretty'
      ? loadPretty()({
          destination,
          colorize: Boolean((destination as { isTTY?: boolean }).isTTY),
          translateTime: 'SYS:HH:MM:ss',
          // The message already says it in words; the fields are for machines (json format).
          ignore: 'pid,hostname,event,file,sessionId,from,to,bytes,durationMs,attempts,reason,nextAttemptAt,duplicateOf,folders,folder,polling,directory,database,sandbox,paused,signal,movedTo,storageCode,masters,hook,exitCode,output,changes,url',
        })
      : destination;
  return pino(
    {
      level: options.level,
      base: undefined,
      hooks: { streamWrite: (line) => scrubSecrets(line, options.secrets) },
    },
    stream,
  );
}
