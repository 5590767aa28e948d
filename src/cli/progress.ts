import type { Job } from '../store/job.js';

/** Erase the terminal line and go back to its start. */
const CLEAR_LINE = '\r\x1b[2K';

/** What a person is told a file is doing: the stage, and how far along it is when that is known. */
export function stageOf(job: Job): { stage: string; percent?: number } | undefined {
  switch (job.state) {
    case 'queued':
    case 'uploading':
      return { stage: 'uploading', percent: job.size > 0 ? Math.min(100, Math.floor((job.bytesSent / job.size) * 100)) : 0 };
    case 'uploaded':
      return { stage: 'uploading', percent: 100 };
    case 'mastering':
      return { stage: 'mastering', percent: job.masteringPercent ?? 0 };
    case 'downloading':
      return { stage: 'downloading' };
    default:
      return undefined;
  }
}

export interface ProgressLine {
  /** The row moved on or made progress. */
  update(job: Job): void;
  /** Something worth a line of its own (a retry coming); the progress line carries on below it. */
  note(text: string): void;
  /** The last word on the file. */
  finish(text: string): void;
}

/**
 * One file's progress. On a terminal, one line redrawn in place
 * (`Song.wav  mastering 63%`); elsewhere (a pipe, a log file), a plain
 * line per stage change only (`Song.wav: mastering 0%`), with no control codes.
 */
export function progressLine(name: string, out: NodeJS.WritableStream & { isTTY?: boolean } = process.stdout): ProgressLine {
  return out.isTTY ? redrawnLine(name, out) : plainLines(name, out);
}

function redrawnLine(name: string, out: NodeJS.WritableStream): ProgressLine {
  let shown: string | undefined;
  const draw = (text: string, end = '') => {
    out.write(`${CLEAR_LINE}${name}  ${text}${end}`);
  };
  return {
    update(job) {
      const stage = stageOf(job);
      if (!stage) return;
      const text = stage.percent === undefined ? stage.stage : `${stage.stage} ${stage.percent}%`;
      if (text === shown) return;
      shown = text;
      draw(text);
    },
    note(text) {
      out.write(`${CLEAR_LINE}${name}: ${text}\n`);
      if (shown !== undefined) draw(shown);
    },
    finish(text) {
      draw(text, '\n');
      shown = undefined;
    },
  };
}

function plainLines(name: string, out: NodeJS.WritableStream): ProgressLine {
  let stageShown: string | undefined;
  return {
    update(job) {
      const stage = stageOf(job);
      if (!stage || stage.stage === stageShown) return;
      stageShown = stage.stage;
      // The percentage is shown where it says something at a stage's start: mastering reports its own.
      out.write(`${name}: ${stage.stage}${stage.stage === 'mastering' ? ` ${stage.percent ?? 0}%` : ''}\n`);
    },
    note(text) {
      out.write(`${name}: ${text}\n`);
    },
    finish(text) {
      out.write(`${name}: ${text}\n`);
    },
  };
}
