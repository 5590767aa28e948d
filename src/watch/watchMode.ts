import { describeFileSystem, type FileSystem } from './fileSystem.js';

export type PollingSetting = 'auto' | 'always' | 'never';

/** How a folder learns of changes, and why, in words for the log and for `check`. */
export interface WatchMode {
  poll: boolean;
  reason: string;
  /** `polling: never` on a network or FUSE file system: a setting to fix. */
  missesRemoteChanges: boolean;
}

/**
 * inotify only hears about changes made through this machine's kernel: a file
 * written to a NAS share by another computer, or appearing behind a FUSE
 * daemon, raises no event. Such folders must be polled; local ones need not.
 * `fileSystem` is undefined when it could not be determined.
 */
export function watchMode(setting: PollingSetting, fileSystem: FileSystem | undefined): WatchMode {
  const where = fileSystem === undefined ? 'an undetermined file system' : describeFileSystem(fileSystem);
  const mode = (poll: boolean, reason: string, missesRemoteChanges = false): WatchMode => ({ poll, reason, missesRemoteChanges });
  if (setting === 'always') return mode(true, `polling: always (${where})`);
  if (setting === 'never') {
    return fileSystem?.network
      ? mode(false, `polling: never, although ${where} is a network or FUSE file system: files written from other machines go unnoticed`, true)
      : mode(false, `polling: never (${where})`);
  }
  if (fileSystem === undefined) return mode(false, 'polling: auto, and the file system could not be determined: inotify assumed (set polling: always for a network share)');
  return fileSystem.network
    ? mode(true, `polling: auto, and ${where} is a network or FUSE file system, where inotify misses changes made elsewhere`)
    : mode(false, `polling: auto, and ${where} is local: inotify sees every change`);
}
