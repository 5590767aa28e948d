import type { State } from '../states.js';
import { UNRECORDED_HEAD } from '../migrations/009-unrecorded-heads.js';
import type { Query } from './connection.js';
import { advisoryLock } from './locks.js';

/** States whose bytes storage holds: a file with the same bytes is their duplicate, whether or not mastering has finished. */
const STORED_STATES_SQL = (['uploaded', 'mastering', 'downloading', 'done'] as const satisfies readonly State[]).map((state) => `'${state}'`).join(', ');

export interface ReservationKey {
  id: number;
  share: string;
  size: number;
  headSha256: string;
  sha256: string | undefined;
}

/** What a reservation is decided on: the other rows of the share with these bytes, as of one instant. */
export interface ReservationFacts {
  /** The earliest stored upload with this sha256 that is no duplicate itself (only asked with a sha256). */
  original: number | null;
  /** A stored upload of this size began the same way, or its beginning was never recorded: only the whole hash can tell. */
  storedHead: boolean;
  /** A row sending a file of this size and beginning, now or again (its attempt was cut short, maybe after its last byte). */
  holder: number | null;
}

/**
 * Under READ COMMITTED two transactions could both find no holder and both
 * send. The advisory lock on (share, size, beginning) makes them decide one
 * after the other: the statement after it sees what the previous holder of
 * the lock committed. The facts are one statement, so they are of one
 * instant: a holder cannot slip from `uploading` to stored between two reads.
 * The caller, holding the lock until its COMMIT, writes its decision.
 */
export async function reservationFacts(query: Query, key: ReservationKey): Promise<ReservationFacts> {
  await query(advisoryLock('reservation'), [`${key.share}\n${key.size}\n${key.headSha256}`]);
  const { rows } = await query<{ original: number | null; stored_head: boolean; holder: number | null }>(
    `SELECT
       (SELECT id FROM jobs WHERE $5::text IS NOT NULL AND share = $1 AND sha256 = $5 AND id <> $4 AND state IN (${STORED_STATES_SQL}) AND duplicate_of IS NULL
        ORDER BY id LIMIT 1) AS original,
       EXISTS (SELECT 1 FROM jobs WHERE share = $1 AND size = $2 AND head_sha256 IN ($3, $6) AND id <> $4 AND state IN (${STORED_STATES_SQL}) AND sha256 IS NOT NULL) AS stored_head,
       (SELECT id FROM jobs WHERE share = $1 AND size = $2 AND head_sha256 = $3 AND id <> $4 AND state IN ('uploading', 'queued', 'retrying') ORDER BY id LIMIT 1) AS holder`,
    [key.share, key.size, key.headSha256, key.id, key.sha256 ?? null, UNRECORDED_HEAD],
  );
  const { original, stored_head: storedHead, holder } = rows[0]!;
  return { original, storedHead, holder };
}
