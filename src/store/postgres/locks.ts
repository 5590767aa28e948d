/**
 * Transaction-scoped advisory locks, one key space per use: (class, hash of
 * what is locked). Separate classes keep a hash that happens to match across
 * uses from making two unrelated transactions wait for each other, or
 * deadlock. Each transaction takes at most one lock of a class, and takes it
 * before any row lock it then waits for, so they cannot deadlock among
 * themselves either. Released by COMMIT or ROLLBACK, never by hand.
 */
const CLASSES = {
  /** Schema migrations: daemons starting at once take turns. */
  migrations: 0x63_77_00_01,
  /** One path's versions: two daemons that see a new file at once create its rows one after the other. */
  version: 0x63_77_00_02,
  /** One (share, size, beginning): of identical files, exactly one decides to send. */
  reservation: 0x63_77_00_03,
} as const;

/** The statement taking the lock of class `use` on the text given as $1. */
export const advisoryLock = (use: keyof typeof CLASSES): string => `SELECT pg_advisory_xact_lock(${CLASSES[use]}, hashtext($1))`;
