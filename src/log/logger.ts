import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';

export type LogFormat = 'json' | 'pretty';

/** Query strings of signed URLs carry the signature; everything after `?` goes. */
const SIGNED_QUERY = /(\/[^\s"?]*)\?[^\s"]*X-Goog-[^\s"]*/gi;

/**
 * Removes secrets from a finished log line. Redaction happens here, on the
 * serialized text, so no field, error message or stack trace can carry the
 * API key or a signature past it, whatever code logged it.
 */
export function scrubSecrets(line: string, secrets: readonly string[]): string {
  let scrubbed = line.replace(SIGNED_QUERY, '$1?<redacted>');
  for (const secret of secrets) {
    if (secret.length >= 4) scrubbed = scrubbed.split(secret).join('<redacted>');
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

export function createLogger(options: LoggerOptions): Logger {
  const destination = options.destination ?? process.stdout;
  const stream =
    options.format === 'pretty'
      ? pretty({
          destination,
          colorize: Boolean((destination as { isTTY?: boolean }).isTTY),
          translateTime: 'SYS:HH:MM:ss',
          // The message already says it in words; the fields are for machines (json format).
          ignore: 'pid,hostname,event,file,sessionId,from,to,bytes,durationMs,attempts,reason,nextAttemptAt,duplicateOf,folders,database,sandbox',
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
