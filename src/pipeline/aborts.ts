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
