import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { SandboxContext } from './context.js';
import { hostileUploadData } from './hostile.js';
import { RESULT_FILES, canRestart, jobProgress, masteringSettingsSchema, type JobEnding } from './mastering.js';
import type { ApiReply } from './respond.js';
import { issueDownloadUrl, issueUploadUrl } from './storageUrls.js';
import type { Fault } from './types.js';

/** The four vendor endpoints, past the header checks. Rules follow cryomix-api.md. */

const expiration = z.int().min(1).max(604800).default(600);

const uploadSchema = z.object({
  object_names: z.array(z.string().min(1).max(1024)).length(1),
  content_type: z.enum(['audio/wav', 'audio/wave', 'audio/x-wav', 'audio/mpeg']),
  expiration_seconds: expiration,
});

const downloadSchema = z.object({ expiration_seconds: expiration });

export const INVALID: ApiReply = { code: 400, message: 'invalid required parameters' };
const SESSION_NOT_FOUND: ApiReply = { code: 400, message: 'Session-Id not found' };

/**
 * A repeated call for the same Session-Id gets a fresh URL in the same folder.
 * `fault` may expire that URL or spoil the answer's data (see hostile.ts).
 */
export function upload(ctx: SandboxContext, sessionId: string, body: unknown, fault: Fault | undefined): ApiReply {
  const parsed = uploadSchema.safeParse(body);
  if (!parsed.success) return INVALID;
  const { object_names: [name = ''], content_type, expiration_seconds } = parsed.data;
  const session = ctx.state.openSession(sessionId);
  const key = { area: 'uploads', folder: session.uploadFolderName, name } as const;
  const issued = issueUploadUrl(ctx, key, content_type, expiration_seconds);
  // URLs signed within one second are identical, so a fresh URL must also revive the string a fault spoiled.
  if (fault?.kind === 'expired-url') ctx.state.expiredSignatures.add(issued.signature);
  else ctx.state.expiredSignatures.delete(issued.signature);
  const honest = { upload_folder_name: session.uploadFolderName, upload_object_names: { [name]: issued.url } };
  const issueFor = (other: string): string => issueUploadUrl(ctx, { ...key, name: other }, content_type, expiration_seconds).url;
  return { code: 200, message: 'Signed URL generated successfully', data: hostileUploadData(fault, honest, issueFor) };
}

export function masteringStart(ctx: SandboxContext, sessionId: string, body: unknown, ending: JobEnding): ApiReply {
  const settings = masteringSettingsSchema.safeParse(body);
  if (!settings.success) return INVALID;
  const session = ctx.state.session(sessionId);
  if (!session || session.uploads.length === 0) return SESSION_NOT_FOUND;
  const now = Date.now();
  if (!canRestart(session.job, now, ctx.masteringSeconds)) {
    return { code: 400, message: 'mastering job already started for this Session-Id' };
  }
  ctx.state.startJob(session, { startedAt: now, settings: settings.data, ending, processedFolderName: randomUUID() });
  return { code: 200, message: 'Mastering started, please use percentage api to check the progress', data: null };
}

export function percentage(ctx: SandboxContext, sessionId: string): ApiReply {
  const job = ctx.state.session(sessionId)?.job;
  if (!job) return SESSION_NOT_FOUND;
  const progress = jobProgress(job, Date.now(), ctx.masteringSeconds);
  const data =
    progress.status === 'completed'
      ? {
          ...progress,
          processedFolderName: job.processedFolderName,
          processedObjectNames: Object.fromEntries(RESULT_FILES.map((name, i) => [String(i), name])),
        }
      : progress;
  return { code: 200, message: 'Mastering status fetched successfully', data };
}

/** `fault` may hand out URLs that storage treats as expired (as after a client sat on them too long). */
export function download(ctx: SandboxContext, sessionId: string, body: unknown, fault: Fault | undefined): ApiReply {
  const parsed = downloadSchema.safeParse(body);
  if (!parsed.success) return INVALID;
  const job = ctx.state.session(sessionId)?.job;
  if (!job) return SESSION_NOT_FOUND;
  if (jobProgress(job, Date.now(), ctx.masteringSeconds).status !== 'completed') {
    return { code: 400, message: 'mastering is not completed for this Session-Id' };
  }
  const urls = RESULT_FILES.map((name) => {
    const key = { area: 'processed', folder: job.processedFolderName, name } as const;
    const issued = issueDownloadUrl(ctx, key, parsed.data.expiration_seconds);
    if (fault?.kind === 'expired-url') ctx.state.expiredSignatures.add(issued.signature);
    else ctx.state.expiredSignatures.delete(issued.signature);
    return [name, issued.url];
  });
  return {
    code: 200,
    message: 'Signed URLs generated successfully',
    data: { download_audio_urls: Object.fromEntries(urls) },
  };
}
