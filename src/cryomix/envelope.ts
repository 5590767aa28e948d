/**
 * The API wraps every answer as `{data, message, status, code}`. Only what
 * the client uses is checked; anything else the vendor adds is ignored.
 */

/** A 2xx answer that does not say what the documentation promises. */
export class MalformedAnswer extends Error {}

export type JsonObject = Record<string, unknown>;

/** The `data` of a successful answer; throws MalformedAnswer when the body is not the envelope. */
export function successData(text: string): unknown {
  const envelope = parseJsonObject(text);
  if (envelope === undefined) throw new MalformedAnswer('the body is not a JSON object');
  if (envelope.status !== 'success') throw new MalformedAnswer(`"status" is ${describe(envelope.status)}, expected "success"`);
  if (!('data' in envelope)) throw new MalformedAnswer('"data" is missing');
  return envelope.data;
}

/** What a failed answer says: the envelope's `message`, else the body itself (both capped). */
export function errorMessage(text: string, statusCode: number): string {
  const message = parseJsonObject(text)?.message;
  const said = typeof message === 'string' && message.trim() !== '' ? message : text;
  const trimmed = said.replace(/\s+/g, ' ').trim();
  if (trimmed === '') return `no message (HTTP ${statusCode})`;
  return trimmed.length > 200 ? `${trimmed.slice(0, 200)}…` : trimmed;
}

export function objectField(parent: unknown, name: string): JsonObject {
  const value = isObject(parent) ? parent[name] : undefined;
  if (!isObject(value)) throw new MalformedAnswer(`"${name}" is ${describe(value)}, expected an object`);
  return value;
}

export function stringField(parent: unknown, name: string): string {
  const value = isObject(parent) ? parent[name] : undefined;
  if (typeof value !== 'string' || value === '') throw new MalformedAnswer(`"${name}" is ${describe(value)}, expected a string`);
  return value;
}

function parseJsonObject(text: string): JsonObject | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return isObject(value) ? value : undefined;
  } catch (error) {
    if (error instanceof SyntaxError) return undefined;
    throw error;
  }
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === undefined) return 'missing';
  if (value === null) return 'null';
  return typeof value === 'string' ? `"${value.slice(0, 40)}"` : typeof value;
}
