/**
 * True for a name that stays inside the folder it is joined to: no path
 * separator, not `.` or `..`, no NUL, not longer than file systems allow.
 * Result names come from the API, and become files in the studio's folder.
 */
export function isPlainFileName(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !/[/\\\0]/.test(name) && Buffer.byteLength(name) <= 255;
}
