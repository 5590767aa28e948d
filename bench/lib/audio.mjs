/*
 * Valid PCM WAV files, as src/watch/sniff.ts accepts them: RIFF/WAVE, a fmt
 * chunk, and a data chunk whose size agrees with the file's length. The
 * first data bytes are a unique tag, so that no two files are the same
 * bytes (the daemon would dedupe them) or share their first 64 KiB (it would
 * wait for a "twin" in flight, src/pipeline/twins.ts).
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fdatasyncSync, ftruncateSync, openSync, writeSync } from 'node:fs';

const HEADER_BYTES = 44;

/** The 44-byte header of a WAV file of `totalBytes`. */
export function wavHeader(totalBytes) {
  const header = Buffer.alloc(HEADER_BYTES);
  header.write('RIFF', 0, 'latin1');
  header.writeUInt32LE(totalBytes - 8, 4);
  header.write('WAVE', 8, 'latin1');
  header.write('fmt ', 12, 'latin1');
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20); // PCM
  header.writeUInt16LE(2, 22); // stereo
  header.writeUInt32LE(44_100, 24);
  header.writeUInt32LE(44_100 * 4, 28);
  header.writeUInt16LE(4, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36, 'latin1');
  header.writeUInt32LE(totalBytes - HEADER_BYTES, 40);
  return header;
}

/** A whole small WAV in memory: header, a 32-byte random tag, zeros. */
export function smallWav(totalBytes) {
  const file = Buffer.alloc(totalBytes);
  wavHeader(totalBytes).copy(file, 0);
  randomBytes(32).copy(file, HEADER_BYTES);
  return file;
}

/**
 * Writes a big WAV in 8 MiB chunks (memory stays flat): a random block
 * repeated, the tag first. fdatasync at the end, so that no dirty pages of
 * it are written back while something else is being measured.
 */
export function writeBigWav(path, totalBytes) {
  const block = randomBytes(8 * 1024 * 1024);
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, wavHeader(totalBytes), 0, HEADER_BYTES, 0);
    let offset = HEADER_BYTES;
    while (offset < totalBytes) {
      const length = Math.min(block.length, totalBytes - offset);
      writeSync(fd, block, 0, length, offset);
      offset += length;
    }
    fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * A big WAV written in no time and taking no disk: the header and a random
 * 32-byte tag, then a hole up to `totalBytes` (reads as zeros). Two such
 * files differ in their first 64 KiB and as wholes, so the daemon neither
 * dedupes them nor waits for a twin. For benchmarks that need bytes to keep
 * flowing, not particular bytes (the sandbox hashes zeros as fast as any).
 */
export function writeSparseWav(path, totalBytes) {
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, wavHeader(totalBytes), 0, HEADER_BYTES, 0);
    writeSync(fd, randomBytes(32), 0, 32, HEADER_BYTES);
    ftruncateSync(fd, totalBytes);
  } finally {
    closeSync(fd);
  }
}
