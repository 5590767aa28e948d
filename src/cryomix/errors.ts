import { CryomixWatchError } from '../errors.js';

export { TransientError } from '../errors.js';

/** 401 from the API: wrong key, wrong Source, or an Origin not on the key's allow list. */
export class UnauthorizedError extends CryomixWatchError {
  constructor(endpoint: string) {
    super(
      'API_UNAUTHORIZED',
      `${endpoint}: the Cryo-mix API rejected the API key (401); check CRYOMIX_API_KEY / api.keyFile and api.origin`,
    );
  }
}

/** A permanent refusal (400 and other 4xx): retrying the same request cannot help. */
export class RejectedError extends CryomixWatchError {
  readonly statusCode: number;
  readonly apiMessage: string;

  constructor(endpoint: string, statusCode: number, apiMessage: string) {
    super('API_REJECTED', `${endpoint}: the Cryo-mix API refused the request (${statusCode}): ${apiMessage}`);
    this.statusCode = statusCode;
    this.apiMessage = apiMessage;
  }
}

/** The API answered with a signed URL we must not use (SPEC guarantee 6). */
export class UnsafeUrlError extends CryomixWatchError {
  constructor(problem: string) {
    super('UNSAFE_URL', `refusing a signed URL from the API: ${problem}`);
  }
}
