import { isPermissionDenied } from '../files/errno.js';

/** Why a file could not be read, in words for the person fixing it. */
export function readProblem(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return 'no such file';
  if (isPermissionDenied(error)) return 'permission denied';
  if (code === 'EISDIR') return 'it is a directory';
  return error instanceof Error ? error.message : String(error);
}
