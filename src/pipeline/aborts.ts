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
