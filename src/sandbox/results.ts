import type { ResultFile } from './mastering.js';
import type { Session } from './state.js';

/**
 * The files a completed job "produces". They are small but valid, so a
 * client that checks what it downloaded (RIFF header, MPEG frame sync, JSON)
 * is exercised as it would be against the real service.
 */

export interface ResultBody {
  contentType: string;
  body: Buffer;
}

export function renderResult(name: ResultFile, session: Session): ResultBody {
  switch (name) {
    case 'FinalMaster.wav':
      return { contentType: 'audio/wav', body: sineWav(1) };
    case 'FinalMaster.mp3':
    case 'OriginalMix.mp3':
      return { contentType: 'audio/mpeg', body: silentMp3(1) };
    case 'MasteringReport.json':
      return { contentType: 'application/json', body: Buffer.from(JSON.stringify(report(session), null, 2)) };
  }
}

const SAMPLE_RATE = 44100;
const CHANNELS = 2;
const BYTES_PER_SAMPLE = 2;

/** 16-bit stereo PCM, a 440 Hz tone at half scale. */
function sineWav(seconds: number): Buffer {
  const frames = Math.round(SAMPLE_RATE * seconds);
  const dataSize = frames * CHANNELS * BYTES_PER_SAMPLE;
  const wav = Buffer.alloc(44 + dataSize);
  wav.write('RIFF', 0, 'ascii');
  wav.writeUInt32LE(36 + dataSize, 4);
  wav.write('WAVE', 8, 'ascii');
  wav.write('fmt ', 12, 'ascii');
  wav.writeUInt32LE(16, 16);
  wav.writeUInt16LE(1, 20); // PCM
  wav.writeUInt16LE(CHANNELS, 22);
  wav.writeUInt32LE(SAMPLE_RATE, 24);
  wav.writeUInt32LE(SAMPLE_RATE * CHANNELS * BYTES_PER_SAMPLE, 28);
  wav.writeUInt16LE(CHANNELS * BYTES_PER_SAMPLE, 32);
  wav.writeUInt16LE(BYTES_PER_SAMPLE * 8, 34);
  wav.write('data', 36, 'ascii');
  wav.writeUInt32LE(dataSize, 40);
  for (let i = 0; i < frames; i++) {
    const sample = Math.round(Math.sin((2 * Math.PI * 440 * i) / SAMPLE_RATE) * 16383);
    for (let c = 0; c < CHANNELS; c++) wav.writeInt16LE(sample, 44 + (i * CHANNELS + c) * BYTES_PER_SAMPLE);
  }
  return wav;
}

/** MPEG-1 Layer III, 128 kbit/s, 44.1 kHz, joint stereo, no CRC, no padding. */
const MP3_HEADER = Buffer.from([0xff, 0xfb, 0x90, 0x44]);
const MP3_FRAME_BYTES = Math.floor((144 * 128_000) / SAMPLE_RATE);
const MP3_SAMPLES_PER_FRAME = 1152;

/** Frames whose side information is all zero decode to silence. */
function silentMp3(seconds: number): Buffer {
  const count = Math.ceil((SAMPLE_RATE * seconds) / MP3_SAMPLES_PER_FRAME);
  const mp3 = Buffer.alloc(count * MP3_FRAME_BYTES);
  for (let i = 0; i < count; i++) MP3_HEADER.copy(mp3, i * MP3_FRAME_BYTES);
  return mp3;
}

function report(session: Session): unknown {
  const input = session.uploads.at(-1);
  return {
    sessionId: session.id,
    input: input && { objectName: input.objectName, size: input.size, sha256: input.sha256 },
    settings: session.job?.settings ?? {},
    loudness: { integratedLufs: -9.2, truePeakDbtp: -1.0 },
    generator: 'cryomix-watch sandbox',
  };
}
