/**
 * The lease rule in SQL, on the database's clock only: the machines'
 * clocks differ, and no machine can ask whether a process on another one
 * is alive, so a claim is free when it is unowned, this holder's, or its
 * lease has lapsed by now().
 */

/** Nobody else holds a live claim on the row; `ownerParam` names this holder. */
export const free = (ownerParam: string, alias = '') => {
  const a = alias === '' ? '' : `${alias}.`;
  return `(${a}owner IS NULL OR ${a}owner = ${ownerParam} OR ${a}lease_until IS NULL OR ${a}lease_until <= now())`;
};

/** Until when a claim or renewal made now holds, in whole milliseconds, so that Job.leaseUntil reads it exactly. */
export const leaseFor = (msParam: string) => `date_trunc('milliseconds', now() + ${msParam}::float8 * interval '1 millisecond')`;

/** The SET clause of a claim by the holder whose owner, pid, host and lease length are $n..$n+3. */
export const claimedBy = (first: number) =>
  `owner = $${first}, owner_pid = $${first + 1}, owner_host = $${first + 2}, lease_until = ${leaseFor(`$${first + 3}`)}`;
