/** Why an in-flight upload was aborted; the uploader files the job differently for each. */
export class ShutdownAbort extends Error {
  constructor() {
    super('the daemon is shutting down');
  }
}

export class SupersededAbort extends Error {
  constructor() {
    super('the file changed or disappeared during the upload');
  }
}

/**
 * The claim could not be renewed in time (the state database does not
 * answer): the work stops while the lease still holds, before another
 * daemon sharing the queue may take the job over.
 */
export class ClaimAtRiskAbort extends Error {
  constructor() {
    super('the state database did not answer in time to renew this daemon\'s claim on the file, so it stopped before another daemon may take it over');
  }
}

/** A `pause` window of `uploads.schedule` began: the upload waits for its end, not counted as an attempt. */
export class ParkedAbort extends Error {
  readonly until: number | null;
  readonly why: string;

  constructor(why: string, until: number | null) {
    super(`uploads are paused (${why})`);
    this.why = why;
    this.until = until;
  }
}
