/** The `code` of a Node system error (ENOENT, EACCES…), or undefined for anything else. */
export function errnoCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

/** The process may not read (or write) it: file modes, an ACL, a share's own rules. */
export function isPermissionDenied(error: unknown): boolean {
  const code = errnoCode(error);
  return code === 'EACCES' || code === 'EPERM';
}

/** The path no longer leads to anything: deleted, or a directory on its way replaced. */
export function isGone(error: unknown): boolean {
  const code = errnoCode(error);
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** For a look at a path: null when nothing is there, any other error thrown. */
export function nullIfGone(error: unknown): null {
  if (isGone(error)) return null;
  throw error;
}
