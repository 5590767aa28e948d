import { randomUUID } from 'node:crypto';
import type { JobEnding, MasteringSettings } from './mastering.js';
import type { ApiRequestRecord, Endpoint, StoredObject } from './types.js';

export interface MasteringJob {
  /** Epoch ms; progress is derived from it on every poll, so no timers outlive close(). */
  startedAt: number;
  settings: MasteringSettings;
  /** How the job ends: `completed`, or as a 'job-failed' or 'stuck-pending' fault made it. */
  ending: JobEnding;
  processedFolderName: string;
}

/** Everything the API knows about one client Session-Id. */
export interface Session {
  id: string;
  /** One folder per session: a repeated multi-upload call reuses it. */
  uploadFolderName: string;
  uploads: StoredObject[];
  job?: MasteringJob;
}

/** In-memory bookkeeping of one sandbox; nothing survives close(). */
export class SandboxState {
  readonly objects: StoredObject[] = [];
  /** Signatures of URLs issued under an 'expired-url' fault. */
  readonly expiredSignatures = new Set<string>();
  readonly #requests: ApiRequestRecord[] = [];
  readonly #sessions = new Map<string, Session>();
  readonly #byUploadFolder = new Map<string, Session>();
  readonly #byResultFolder = new Map<string, Session>();

  session(id: string): Session | undefined {
    return this.#sessions.get(id);
  }

  openSession(id: string): Session {
    const existing = this.#sessions.get(id);
    if (existing) return existing;
    const session: Session = { id, uploadFolderName: randomUUID(), uploads: [] };
    this.#sessions.set(id, session);
    this.#byUploadFolder.set(session.uploadFolderName, session);
    return session;
  }

  sessionByUploadFolder(folder: string): Session | undefined {
    return this.#byUploadFolder.get(folder);
  }

  sessionByResultFolder(folder: string): Session | undefined {
    return this.#byResultFolder.get(folder);
  }

  startJob(session: Session, job: MasteringJob): void {
    session.job = job;
    this.#byResultFolder.set(job.processedFolderName, session);
  }

  addObject(session: Session, object: StoredObject): void {
    session.uploads.push(object);
    this.objects.push(object);
  }

  /**
   * Logs a request on arrival, so the log keeps arrival order; the caller
   * sets `status` on the returned record once it answers.
   */
  record(endpoint: Endpoint, sessionId: string | null): ApiRequestRecord {
    const entry: ApiRequestRecord = { endpoint, sessionId, status: 0 };
    this.#requests.push(entry);
    return entry;
  }

  requests(): ApiRequestRecord[] {
    return this.#requests.map((entry) => ({ ...entry }));
  }
}
