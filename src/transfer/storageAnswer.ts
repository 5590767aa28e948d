/**
 * Reading what Google Cloud Storage says about a PUT. Both readers are
 * lenient: storage behind a proxy, or the sandbox, may answer with less.
 */

export interface StorageErrorBody {
  code: string | undefined;
  message: string | undefined;
}

/** `<Error><Code>…</Code><Message>…</Message>…</Error>`; a body without them yields undefined fields. */
export function parseStorageError(xml: string): StorageErrorBody {
  return { code: element(xml, 'Code'), message: element(xml, 'Message') };
}

/**
 * The base64 MD5 from `x-goog-hash`, which Google sends either as one header
 * (`crc32c=…, md5=…`) or as one header per hash, which undici hands over as
 * an array and node:http joins with commas. Undefined for composite objects, which carry no MD5.
 */
export function md5FromGoogHash(header: string | string[] | undefined): string | undefined {
  const values = header === undefined ? [] : [header].flat();
  for (const part of values.flatMap((value) => value.split(','))) {
    const trimmed = part.trim();
    if (trimmed.toLowerCase().startsWith('md5=')) return trimmed.slice(4);
  }
  return undefined;
}

const MAX_TEXT = 300;

function element(xml: string, name: string): string | undefined {
  const match = new RegExp(`<${name}>([\\s\\S]*?)</${name}>`).exec(xml);
  if (match?.[1] === undefined) return undefined;
  const text = decodeEntities(match[1]).replace(/\s+/g, ' ').trim();
  if (text === '') return undefined;
  return text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT)}…` : text;
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decodeEntities(text: string): string {
  return text.replace(/&(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);/g, (whole, entity: string) => {
    if (entity.startsWith('#x')) return safeCodePoint(Number.parseInt(entity.slice(2), 16), whole);
    if (entity.startsWith('#')) return safeCodePoint(Number.parseInt(entity.slice(1), 10), whole);
    return ENTITIES[entity] ?? whole;
  });
}

function safeCodePoint(codePoint: number, fallback: string): string {
  return codePoint > 0 && codePoint <= 0x10ffff ? String.fromCodePoint(codePoint) : fallback;
}
