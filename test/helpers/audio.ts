import { randomBytes } from 'node:crypto';

/** A RIFF chunk; `sizeField` overrides the declared size to imitate placeholder headers. */
export function chunk(id: string, body: Buffer, sizeField: number = body.length): Buffer {
  const header = Buffer.alloc(8);
  header.write(id, 0, 'latin1');
  header.writeUInt32LE(sizeField, 4);
  const pad = body.length % 2 === 1 ? Buffer.alloc(1) : Buffer.alloc(0);
  return Buffer.concat([header, body, pad]);
}

/** PCM, 2 channels, 44.1 kHz, 16 bit. */
export function fmtChunk(): Buffer {
  const body = Buffer.alloc(16);
  body.writeUInt16LE(1, 0);
  body.writeUInt16LE(2, 2);
  body.writeUInt32LE(44_100, 4);
  body.writeUInt32LE(44_100 * 4, 8);
  body.writeUInt16LE(4, 12);
  body.writeUInt16LE(16, 14);
  return chunk('fmt ', body);
}

export function ds64Chunk(riffSize: bigint, dataSize: bigint): Buffer {
  const body = Buffer.alloc(28);
  body.writeBigUInt64LE(riffSize, 0);
  body.writeBigUInt64LE(dataSize, 8);
  return chunk('ds64', body);
}

/** A whole WAV file; the RIFF size is right unless `riffSize` says otherwise. */
export function wav(chunks: Buffer[], options: { form?: 'RIFF' | 'RF64' | 'BW64'; riffSize?: number } = {}): Buffer {
  const body = Buffer.concat(chunks);
  const head = Buffer.alloc(12);
  head.write(options.form ?? 'RIFF', 0, 'latin1');
  head.writeUInt32LE(options.riffSize ?? 4 + body.length, 4);
  head.write('WAVE', 8, 'latin1');
  return Buffer.concat([head, body]);
}

/** MPEG-1 Layer III, 128 kbit/s, 44.1 kHz: 417-byte frames. */
export function mp3Frames(count: number): Buffer {
  const frame = Buffer.alloc(417);
  frame.set([0xff, 0xfb, 0x90, 0x64]);
  return Buffer.concat(Array.from({ length: count }, () => frame));
}

/** An ID3v2.4 tag whose body is `bodyLength` bytes, with the footer flag when asked. */
export function id3Tag(bodyLength: number, options: { footer?: boolean } = {}): Buffer {
  const header = Buffer.from([0x49, 0x44, 0x33, 4, 0, options.footer ? 0x10 : 0, 0, 0, 0, 0]);
  for (let i = 0; i < 4; i++) header.writeUInt8((bodyLength >> (7 * (3 - i))) & 0x7f, 6 + i);
  const footer = options.footer ? Buffer.from([0x33, 0x44, 0x49, 4, 0, 0x10, ...header.subarray(6, 10)]) : Buffer.alloc(0);
  return Buffer.concat([header, Buffer.alloc(bodyLength), footer]);
}

/** A complete, valid PCM WAV with `dataBytes` of random audio (random so no two files dedupe). */
export function pcmWav(dataBytes: number): Buffer {
  return wav([fmtChunk(), chunk('data', randomBytes(dataBytes))]);
}

/** An MP3 of at least `minBytes`: an ID3 tag then MPEG frames, with random bytes in the frames. */
export function mp3File(minBytes: number): Buffer {
  const frames = mp3Frames(Math.ceil(minBytes / 417));
  for (let offset = 0; offset < frames.length; offset += 417) randomBytes(400).copy(frames, offset + 4);
  return Buffer.concat([id3Tag(64), frames]);
}
