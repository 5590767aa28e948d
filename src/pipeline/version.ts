import { errnoCode, isPermissionDenied } from '../files/errno.js';
import type { FileStat } from '../watch/settle.js';

/** A file version is its size and mtime; the sha256 is learnt while uploading. */
export function sameVersion(a: FileStat, b: FileStat): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs;
}

/** An error from a file-system call (it names the syscall), as opposed to ours, which carry codes too. */
export function isFileSystemError(error: unknown): boolean {
  return error instanceof Error && typeof (error as NodeJS.ErrnoException).syscall === 'string';
}

/** Why a file cannot be read, in words for the studio, or undefined when the error is not about access. */
export function unreadableReason(error: unknown): string | undefined {
  const code = errnoCode(error);
  if (isPermissionDenied(error)) return 'cannot read the file: permission denied (give the cryomix-watch user read access)';
  if (code === 'EISDIR') return 'not a regular file';
  if (code === 'ELOOP') return 'the path goes through a loop of symbolic links';
  return undefined;
}
