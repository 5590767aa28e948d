import type Database from 'better-sqlite3';
import { jobs } from './001-jobs.js';
import { uploadLease } from './002-upload-lease.js';
import { mastering } from './003-mastering.js';
import { recent } from './004-recent.js';
import { dedupe } from './005-dedupe.js';
import { queueOrder } from './006-queue-order.js';
import { headHash } from './007-head-hash.js';
import { followUps } from './008-follow-ups.js';
import { unrecordedHeads } from './009-unrecorded-heads.js';

/** Append-only: never edit a shipped migration, add the next number instead. */
export interface Migration {
  version: number;
  up(db: Database.Database): void;
}

export const MIGRATIONS: readonly Migration[] = [jobs, uploadLease, mastering, recent, dedupe, queueOrder, headHash, followUps, unrecordedHeads];
