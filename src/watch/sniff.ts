import { open, type FileHandle } from 'node:fs/promises';
import { extname } from 'node:path';

export type MediaKind = 'wav' | 'mp3';

export type Inspection =
  | { verdict: 'complete'; kind: MediaKind; contentType: string }
  /** Still being written: the caller keeps waiting (and gives up after its own deadline). */
  | { verdict: 'incomplete'; reason: string }
  /** The content can never become a valid upload: the file is rejected with this reason. */
  | { verdict: 'invalid'; reason: string };

// A Map, not an object literal: `extname` can return '.constructor'.
const KIND_BY_EXTENSION = new Map<string, MediaKind>([
  ['.wav', 'wav'],
  ['.wave', 'wav'],
  ['.mp3', 'mp3'],
]);

export function kindFromExtension(path: string): MediaKind | null {
  return KIND_BY_EXTENSION.get(extname(path).toLowerCase()) ?? null;
}

/**
 * The signed upload URL binds the content type, so it must never vary. These
 * are what mime-types answers for .wav and .mp3 (a test holds them to it);
 * written out because loading its database, ~2,000 types to know two, cost
 * every start ~20 ms and the idle daemon ~0.5 MB of heap (issue 17).
 */
export const CONTENT_TYPE: Readonly<Record<MediaKind, string>> = { wav: 'audio/wav', mp3: 'audio/mpeg' };

/** The content type a file is uploaded with, from its extension; undefined for anything not WAV or MP3. */
export function contentTypeForPath(path: string): string | undefined {
  const kind = kindFromExtension(path);
  return kind ? CONTENT_TYPE[kind] : undefined;
}

/** RIFF form (4) + size (4) + WAVE (4); also covers the 10-byte ID3v2 header. */
const HEAD_BYTES = 12;
/** RF64/BW64 write this in 32-bit size fields whose real value lives in `ds64`; DAWs also use it as a placeholder. */
const SIZE_IN_DS64 = 0xffff_ffff;
/** Chunks before `data` are a handful (fmt, bext, iXML, LIST, JUNK); this bounds a hostile or corrupt file. */
const MAX_CHUNKS_BEFORE_DATA = 1024;
/** Some encoders pad after the ID3 tag, so the first frame may start a little later. */
const MP3_SYNC_WINDOW = 4096;
const NOT_FINISHED = ' (the DAW has not finished writing it)';

/**
 * Decides from a few header reads whether the file is the kind its extension
 * says and, for WAV, whether the writer has finished it. Never reads the whole
 * file. `size` is the settled length the verdict is about. File-system errors
 * (ENOENT, EACCES, …) are thrown: whether to retry or reject is the caller's call.
 */
export async function inspectFile(path: string, size: number): Promise<Inspection> {
  const ext = extname(path);
  const kind = kindFromExtension(path);
  if (kind === null) return invalid(`the file is named ${ext || 'without an extension'}, not .wav, .wave or .mp3`);
  const file = await open(path, 'r');
  try {
    return kind === 'wav' ? await inspectWav(file, size, ext) : await inspectMp3(file, size, ext);
  } finally {
    await file.close();
  }
}

async function inspectWav(file: FileHandle, size: number, ext: string): Promise<Inspection> {
  if (size < HEAD_BYTES) return incomplete(`the file has ${bytes(size)}, too few for a WAV header${NOT_FINISHED}`);
  const head = await readAt(file, 0, HEAD_BYTES);
  if (head.length < HEAD_BYTES) return shrunk(size);
  if (!isRiffWave(head)) return invalid(`the file is named ${ext} but its content is ${describe(head)}, not RIFF/WAVE`);

  // RF64 and BW64 are RIFF with 64-bit sizes for files over 4 GiB; their 32-bit fields defer to ds64.
  const wide = head.toString('latin1', 0, 4) !== 'RIFF';
  const riffField = head.readUInt32LE(4);
  let ds64: { riffSize: number; dataSize: number } | undefined;
  let data: { start: number; field: number } | undefined;
  let offset = HEAD_BYTES;
  let chunks = 0;
  while (data === undefined && offset + 8 <= size) {
    if (++chunks > MAX_CHUNKS_BEFORE_DATA) return invalid(`WAV has no data chunk among its first ${MAX_CHUNKS_BEFORE_DATA} chunks`);
    const header = await readAt(file, offset, 8);
    if (header.length < 8) return shrunk(size);
    const id = header.toString('latin1', 0, 4);
    const chunkSize = header.readUInt32LE(4);
    if (id === 'data') {
      data = { start: offset + 8, field: chunkSize };
    } else if (id === 'ds64' && wide) {
      const body = await readAt(file, offset + 8, 16);
      if (body.length < 16) {
        return offset + 24 > size ? incomplete(`the WAV ds64 chunk is not complete yet${NOT_FINISHED}`) : shrunk(size);
      }
      // Beyond 2^53 bytes precision is lost, which only makes an absurd size stay absurd.
      ds64 = { riffSize: Number(body.readBigUInt64LE(0)), dataSize: Number(body.readBigUInt64LE(8)) };
    }
    // Chunks are word-aligned: an odd-sized chunk is followed by one pad byte.
    offset += 8 + chunkSize + (chunkSize & 1);
  }

  const riffSize = wide && riffField === SIZE_IN_DS64 ? ds64?.riffSize : riffField;
  // Writers disagree on whether the RIFF size counts the pad byte after an odd final chunk.
  const riffAgrees = riffSize !== undefined && (riffSize + 8 === size || riffSize + 9 === size);

  if (data === undefined) {
    return riffAgrees
      ? invalid('the WAV file has no data chunk')
      : incomplete(`the WAV header has no data chunk yet within the file's ${bytes(size)}${NOT_FINISHED}`);
  }

  const dataSize = wide && data.field === SIZE_IN_DS64 ? ds64?.dataSize : data.field;
  const dataFits = dataSize !== undefined && data.start + dataSize <= size;
  if (riffAgrees && dataFits) return { verdict: 'complete', kind: 'wav', contentType: CONTENT_TYPE.wav };

  if (riffSize === undefined || dataSize === undefined) {
    return incomplete(`the ${head.toString('latin1', 0, 4)} header has no sizes yet (no ds64 chunk) and the file has ${bytes(size)}${NOT_FINISHED}`);
  }
  if (!dataFits || dataSize === 0) {
    return incomplete(`WAV header says ${count(data.start)} + ${count(dataSize)} data bytes but the file has ${bytes(size)}${NOT_FINISHED}`);
  }
  return incomplete(`WAV header says the file is ${bytes(riffSize + 8)} but it has ${bytes(size)}${NOT_FINISHED}`);
}

async function inspectMp3(file: FileHandle, size: number, ext: string): Promise<Inspection> {
  if (size < HEAD_BYTES) return incomplete(`the file has ${bytes(size)}, too few for an MP3 header`);
  const head = await readAt(file, 0, HEAD_BYTES);
  if (head.length < HEAD_BYTES) return shrunk(size);
  if (isRiffWave(head)) return invalid(`the file is named ${ext} but its content is WAV (RIFF/WAVE), not MP3`);

  const tagLength = id3v2Length(head);
  if (tagLength === undefined) {
    return isFrameHeader(head, 0)
      ? { verdict: 'complete', kind: 'mp3', contentType: CONTENT_TYPE.mp3 }
      : invalid(`the file is named ${ext} but has no ID3 tag or MPEG frame sync (its content is ${describe(head)})`);
  }
  if (tagLength >= size) {
    return incomplete(`the ID3 tag says ${bytes(tagLength)} but the file has ${bytes(size)} (the encoder has not finished writing it)`);
  }
  const windowLength = Math.min(MP3_SYNC_WINDOW, size - tagLength);
  const window = await readAt(file, tagLength, windowLength);
  if (window.length < windowLength) return shrunk(size);
  for (let i = 0; i + 4 <= window.length; i++) {
    if (isFrameHeader(window, i)) return { verdict: 'complete', kind: 'mp3', contentType: CONTENT_TYPE.mp3 };
  }
  if (windowLength < MP3_SYNC_WINDOW) {
    return incomplete(`no MPEG frame yet in the ${bytes(windowLength)} after the ID3 tag (the encoder has not finished writing it)`);
  }
  return invalid(`the file is named ${ext} and has an ID3 tag but no MPEG frame sync within ${bytes(MP3_SYNC_WINDOW)} after it`);
}

/** Up to `length` bytes at `position`; fewer only at end of file. */
async function readAt(file: FileHandle, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await file.read(buffer, filled, length - filled, position + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return buffer.subarray(0, filled);
}

function isRiffWave(head: Buffer): boolean {
  const form = head.toString('latin1', 0, 4);
  return (form === 'RIFF' || form === 'RF64' || form === 'BW64') && head.toString('latin1', 8, 12) === 'WAVE';
}

/** Total bytes of an ID3v2 tag starting at 0 (header, body, optional footer), or undefined if there is none. */
function id3v2Length(head: Buffer): number | undefined {
  if (head.length < 10 || head.toString('latin1', 0, 3) !== 'ID3') return undefined;
  if (head.readUInt8(3) === 0xff || head.readUInt8(4) === 0xff) return undefined;
  let body = 0;
  for (let i = 6; i < 10; i++) {
    const byte = head.readUInt8(i);
    // Synchsafe: 7 bits per byte, so a set high bit means this is not an ID3 header.
    if (byte & 0x80) return undefined;
    body = (body << 7) | byte;
  }
  const hasFooter = (head.readUInt8(5) & 0x10) !== 0;
  return 10 + body + (hasFooter ? 10 : 0);
}

/**
 * An MPEG audio frame header: 11 sync bits and no reserved value in version,
 * layer, bitrate, sample rate or emphasis. Free-format bitrate (index 0) is
 * refused too: no DAW writes it, and allowing it makes stray 0xFF bytes in
 * the padding after an ID3 tag look like audio.
 */
function isFrameHeader(buffer: Buffer, offset: number): boolean {
  if (offset + 4 > buffer.length) return false;
  const header = buffer.readUInt32BE(offset);
  const sync = header >>> 21;
  const version = (header >>> 19) & 0b11;
  const layer = (header >>> 17) & 0b11;
  const bitrate = (header >>> 12) & 0b1111;
  const sampleRate = (header >>> 10) & 0b11;
  const emphasis = header & 0b11;
  return sync === 0x7ff && version !== 0b01 && layer !== 0b00 && bitrate !== 0 && bitrate !== 0b1111 && sampleRate !== 0b11 && emphasis !== 0b10;
}

/** Names what the file actually is, so the rejection tells the engineer which export setting went wrong. */
function describe(head: Buffer): string {
  if (isRiffWave(head)) return 'WAV (RIFF/WAVE)';
  if (id3v2Length(head) !== undefined || isFrameHeader(head, 0)) return 'MP3';
  const magic = head.toString('latin1', 0, 4);
  if (magic === 'fLaC') return 'FLAC';
  if (magic === 'OggS') return 'Ogg';
  if (magic === 'FORM' && ['AIFF', 'AIFC'].includes(head.toString('latin1', 8, 12))) return 'AIFF';
  if (head.toString('latin1', 4, 8) === 'ftyp') return 'MP4/M4A';
  return `unknown (it starts with ${head.subarray(0, 8).toString('hex').replace(/(..)(?=.)/g, '$1 ')})`;
}

function shrunk(size: number): Inspection {
  return incomplete(`the file became shorter than ${bytes(size)} while being inspected; it is still being written`);
}

function incomplete(reason: string): Inspection {
  return { verdict: 'incomplete', reason };
}

function invalid(reason: string): Inspection {
  return { verdict: 'invalid', reason };
}

function count(n: number): string {
  return n.toLocaleString('en-US');
}

function bytes(n: number): string {
  return `${count(n)} ${n === 1 ? 'byte' : 'bytes'}`;
}
