import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { setImmediate } from 'node:timers/promises';
import type { Logger } from 'pino';
import { isInside, mastersDirectory, type FolderConfig } from '../config/index.js';
import { isStoreError } from '../store/failures.js';
import type { FolderProblem } from '../store/job.js';
import type { JobStore, KnownVersion } from '../store/store.js';
import { fileSystemOf, parseMountInfo, systemSources, type FileSystem } from '../watch/fileSystem.js';
import { createPathFilter, type PathFilter } from '../watch/junk.js';
import { createPoller, type Poller } from '../watch/poller.js';
import { PassMemory } from '../watch/passMemory.js';
import { statFile, statFileSync, type FileStat } from '../watch/settle.js';
import { kindFromExtension } from '../watch/sniff.js';
import { walkFiles } from '../watch/walk.js';
import { watchFolder, type FolderWatch } from '../watch/watcher.js';
import { watchMode, type WatchMode } from '../watch/watchMode.js';
import { Intake, type IntakeOptions } from './intake.js';
import { isGone, isPermissionDenied } from '../files/errno.js';
import { FolderGate, FolderNotAnsweringError, type FileOperations } from '../files/folderGate.js';
import { sameVersion } from './version.js';

/**
 * Which directory the root is: a rename, an unmount or a remount changes it.
 * The birth time tells a root removed and made again apart from the old one,
 * which ext4 gives the same inode number (the old one's watch died with it).
 */
interface RootIdentity {
  dev: number;
  ino: number;
  birthtimeMs: number;
  /**
   * Without statx (kernels before 4.11, some container sandboxes) Node
   * reports the ctime as the birth time, which moves with every file added:
   * a birth time equal to the ctime is not trusted. So is that of a new
   * directory whose first file came within the same clock tick.
   */
  birthTrusted: boolean;
}

const identityOf = ({ dev, ino, birthtimeMs, ctimeMs }: { dev: number; ino: number; birthtimeMs: number; ctimeMs: number }): RootIdentity => ({
  dev,
  ino,
  birthtimeMs,
  birthTrusted: birthtimeMs !== ctimeMs,
});

/** What a look at the root found: the directory, and whether it is a mount point (on another device than its parent). */
interface RootLook {
  identity: RootIdentity;
  onOwnDevice: boolean;
}

/** An answer from the folder that it cannot be looked at (gone, unreadable): null. Not answering at all is thrown on. */
function unlessNotAnswering(error: unknown): null {
  if (error instanceof FolderNotAnsweringError) throw error;
  return null;
}

/**
 * Where the root is: watched; away (missing, renamed, unreadable); or
 * unmounted: it was a mount point and is now a plain directory on its
 * parent's disk (the empty mount point an unmounted share leaves), which
 * must not pass for an emptied folder.
 */
type RootState =
  | { kind: 'watching'; identity: RootIdentity }
  | { kind: 'away'; since: number }
  | { kind: 'unmounted'; mountPoint: RootIdentity; since: number };

/**
 * Whether two looks at the root saw the same directory. A birth time that is
 * not trusted counts only when `strict`: once the root's own watch reported
 * an event about the root itself, any difference means it was replaced.
 */
const sameRoot = (a: RootIdentity | null, b: RootIdentity | null, strict = false) =>
  a !== null &&
  b !== null &&
  a.dev === b.dev &&
  a.ino === b.ino &&
  (a.birthtimeMs === b.birthtimeMs || (!strict && !(a.birthTrusted && b.birthTrusted)));

export type FolderDeps = Pick<IntakeOptions, 'store' | 'logger' | 'sizeLimits' | 'onQueued' | 'onSuperseded' | 'onFatal'> & {
  /** The folder's `problem` changed. */
  onProblemChange(): void;
  /** Which file system holds the root, for `polling: auto`; the mount table and statfs unless a test says otherwise. */
  fileSystemOf?: (path: string) => FileSystem | undefined;
};

/**
 * A folder's file operations at once: enough overlapping stats to hide a
 * share's round trips; and with the thread pool at 64 threads (cli/bin.cts),
 * a hung share holds at most an eighth of it.
 */
export const OPERATIONS_AT_ONCE = 8;
/** How long synchronous stats on a local disk may hold the event loop before uploads get a turn (a cold disk: a few stats). */
const SYNC_STATS_MS = 5;

/**
 * full: at start, every file against the DB. poll: a polled folder's pass,
 * against the last pass where it can. rescan: an inotify folder's rare safety
 * pass, against the DB, keeping no memory of the tree between passes.
 */
type Pass = 'full' | 'poll' | 'rescan';

/**
 * What `check` must agree with: the paths a folder's watcher and walks skip.
 * Moved originals and downloaded masters must not come back as new uploads.
 */
export function folderFilter(config: FolderConfig): PathFilter {
  const outputs = [config.moveTo, config.mastering ? mastersDirectory(config) : undefined];
  const excluded = outputs.filter((dir): dir is string => dir !== undefined && isInside(config.path, dir));
  return createPathFilter(config.path, config.ignore, excluded);
}

/**
 * One configured folder: its watcher, its intake, and the root it watches.
 * A NAS share can vanish and come back (unmount, network, a renamed root)
 * or hang; while it is away or silent its files are not declared gone,
 * other folders carry on, and when it returns the watcher is rebuilt and
 * the folder rescanned, by itself.
 */
export class WatchedFolder {
  readonly config: FolderConfig;
  readonly intake: Intake;
  /** Every file operation on the folder goes through it: a hung share holds up nothing but itself. */
  readonly gate: FolderGate;
  readonly run: FileOperations = (operation) => this.gate.run(operation);
  private readonly filter: PathFilter;
  private readonly store: JobStore;
  private readonly logger: Logger;
  private readonly onFatal: (error: unknown) => void;
  private readonly onProblemChange: () => void;
  private readonly fileSystemOf: (path: string) => FileSystem | undefined;
  /** Whichever the root's file system called for: inotify watches (which every walk extends directory by directory) with slow rescans beside them, or polling. */
  private inotify: FolderWatch | undefined;
  private poller: Poller | undefined;
  private mode: WatchMode | undefined;
  /** Whether the root is on a local disk (not a network or FUSE file system), where a stat costs microseconds. */
  private localDisk = false;
  private readonly passMemory = new PassMemory();
  private root: RootState = { kind: 'away', since: Date.now() };
  /** How the root was mounted when last watched: a mount point of its own, or on a network or FUSE file system. */
  private mounted = { ownDevice: false, network: false };
  /** The root's own watch reported an event about the root itself (removed, moved, or its permissions changed): the next root check compares strictly. */
  private rootEvent = false;
  /** The folder answers again after a hang: the next root check rebuilds the watcher and rescans, as after any absence. */
  private rescanDue = false;
  /** Mount points below the root when last looked, for an inotify folder: a mount or unmount there leaves deaf watches. */
  private mountsBelow = new Set<string>();
  private monitor: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(config: FolderConfig, deps: FolderDeps) {
    this.config = config;
    this.store = deps.store;
    this.logger = deps.logger;
    this.onFatal = deps.onFatal;
    const { fileSystemOf: lookUp = fileSystemOf, onProblemChange, ...intakeDeps } = deps;
    this.onProblemChange = onProblemChange;
    this.fileSystemOf = lookUp;
    this.filter = folderFilter(config);
    this.gate = new FolderGate({
      folder: config.path,
      maxInFlight: OPERATIONS_AT_ONCE,
      timeoutMs: config.answerTimeoutSeconds * 1000,
      onChange: (answering, since) => this.answeringChanged(answering, since),
    });
    this.intake = new Intake({
      ...intakeDeps,
      folder: config.path,
      settleMs: config.settleSeconds * 1000,
      run: this.run,
      rootPresent: () => this.rootPresent(),
    });
  }

  /** Watches and reconciles; resolves once the DB agrees with what is on disk (or the root is known to be away). */
  async start(): Promise<void> {
    await this.attach();
    this.scheduleRootCheck();
  }

  async stop(): Promise<void> {
    this.closed = true;
    clearTimeout(this.monitor);
    this.gate.close();
    this.intake.close();
    await this.detach();
  }

  private async detach(): Promise<void> {
    await Promise.all([this.inotify?.close(), this.poller?.close()]);
    this.inotify = undefined;
    this.poller = undefined;
  }

  /** Why the folder is not being watched as it should, or undefined when it is. */
  get problem(): FolderProblem | undefined {
    const silentSince = this.gate.notAnsweringSince;
    if (silentSince !== undefined) return { problem: 'not answering', since: silentSince };
    if (this.root.kind === 'unmounted') return { problem: 'unmounted', since: this.root.since };
    if (this.root.kind === 'away') return { problem: 'not there', since: this.root.since };
    return undefined;
  }

  /**
   * The root is there and is the directory being watched: only then is a
   * file that cannot be found gone. Asked afresh each time, because an
   * unmount is only noticed by the root check a few seconds later.
   */
  async rootPresent(): Promise<boolean> {
    if (this.root.kind !== 'watching') return false;
    const now = await this.lookAtRoot().catch(() => null);
    return now !== null && sameRoot(now.identity, this.root.identity);
  }

  private rootIs(state: RootState): void {
    const changed = state.kind !== this.root.kind;
    this.root = state;
    if (changed) this.onProblemChange();
  }

  /** The root and its parent, through the gate. Null when there is no directory to watch: gone, unreadable or not a directory. */
  private async lookAtRoot(): Promise<RootLook | null> {
    const root = this.config.path;
    const [found, parent] = await Promise.all([this.gate.run(() => stat(root)).catch(unlessNotAnswering), this.gate.run(() => stat(dirname(root))).catch(unlessNotAnswering)]);
    if (!found?.isDirectory()) return null;
    return { identity: identityOf(found), onOwnDevice: parent !== null && parent.dev !== found.dev };
  }

  /**
   * (Re)builds the watcher on the root as it is now, then reconciles, because
   * events only tell what happens from now on. The file system is looked up
   * here, not once at start: a share may come back mounted differently.
   */
  private async attach(): Promise<void> {
    const root = this.config.path;
    let look: RootLook | null;
    try {
      look = await this.lookAtRoot();
    } catch (error) {
      if (!(error instanceof FolderNotAnsweringError)) throw error;
      // Said by answeringChanged; once it answers, the next root check comes back here.
      await this.detach();
      return;
    }
    await this.detach();
    // Stopped meanwhile: a watcher made now would keep the process alive.
    if (this.closed) return;
    this.rootEvent = false;
    this.rescanDue = false;
    if (look === null) {
      this.rootIs({ kind: 'away', since: Date.now() });
      this.logger.error({ folder: root }, `the watched folder ${root} is not there or not readable (not mounted, renamed, deleted, permissions?); its files are not marked lost, and watching resumes when it is back`);
      return;
    }
    const fileSystem = this.fileSystemOf(root);
    if ((this.mounted.ownDevice && !look.onOwnDevice) || (this.mounted.network && fileSystem?.network === false)) {
      // Still unmounted: only the mount point's identity is kept up to date, so that the next check compares with it.
      if (this.root.kind === 'unmounted') {
        this.root.mountPoint = look.identity;
        return;
      }
      this.rootIs({ kind: 'unmounted', mountPoint: look.identity, since: Date.now() });
      this.logger.error(
        { folder: root },
        `the watched folder ${root} is unmounted: it was a mount point, and is now a plain folder on its parent's disk. Its files keep their state (none is marked removed), and watching resumes when it is mounted again; if the folder now lives on this disk for good, restart cryomix-watch`,
      );
      return;
    }
    this.rootIs({ kind: 'watching', identity: look.identity });
    this.mounted = { ownDevice: look.onOwnDevice, network: fileSystem?.network === true };
    const mode = watchMode(this.config.polling, fileSystem);
    this.announce(mode);
    this.localDisk = fileSystem?.network === false;
    this.passMemory.reset();
    if (mode.poll) {
      this.poller = this.passesEvery(this.config.pollIntervalSeconds, 'poll');
      // The full reconcile is the first pass; polling follows on from it, never alongside it.
      await this.reconcile('full');
      this.poller.start();
      return;
    }
    // Empty until the reconcile below walks the tree: the walk adds each directory just before it lists it.
    this.inotify = watchFolder({
      recursive: this.config.recursive,
      isIgnored: (path) => this.filter.isIgnored(path),
      onPath: (path) => {
        if (this.filter.isCandidate(path)) this.intake.touch(path);
      },
      onDirectoryAdded: (dir) => {
        this.touchFilesIn(dir).catch((error: unknown) => this.onFatal(error));
      },
      onDirectoryRemoved: (dir) => {
        this.touchUnfinishedIn(dir).catch((error: unknown) => this.onFatal(error));
      },
      onOwnEvent: (dir) => {
        if (dir === root) this.rootEvent = true;
      },
      onError: (error) => this.logger.error({ err: error, folder: root }, `watching ${root} failed: ${(error as Error).message}`),
    });
    this.mountsBelow = this.mountPointsBelow();
    await this.reconcile('full');
    // Stopped meanwhile: a poller made now would keep the process alive.
    if (this.closed) return;
    // inotify can lose events without a word: a full event queue, a watch the kernel dropped when a mount below went away,
    // a directory the watch limit left unwatched. A slow pass finds what they missed, and adds the watches that are missing.
    this.poller = this.passesEvery(this.config.rescanIntervalSeconds, 'rescan');
    this.poller.start();
  }

  /** Passes of one kind, each `seconds` after the end of the one before. */
  private passesEvery(seconds: number, pass: Exclude<Pass, 'full'>): Poller {
    return createPoller({ intervalMs: seconds * 1000, pass: (signal) => this.reconcile(pass, signal), onError: (error) => this.onFatal(error) });
  }

  /** Once per folder, and again only if a remount changed the answer. */
  private announce(mode: WatchMode): void {
    if (this.mode?.poll === mode.poll && this.mode.reason === mode.reason) return;
    this.mode = mode;
    const how = mode.poll ? `polled every ${this.config.pollIntervalSeconds} s` : 'watched with inotify';
    const fields = { folder: this.config.path, polling: mode.poll, reason: mode.reason };
    const message = `${this.config.path}: ${how}; ${mode.reason}`;
    if (mode.missesRemoteChanges) this.logger.warn(fields, message);
    else this.logger.info(fields, message);
  }

  /** Polls the root's identity: cheap, and with the root's own watch the only signal an unmount or a renamed root gives. */
  private scheduleRootCheck(): void {
    const intervalMs = Math.min(this.config.pollIntervalSeconds, 5) * 1000;
    this.monitor = setTimeout(() => {
      this.checkRoot()
        .catch((error: unknown) => this.onFatal(error))
        .finally(() => {
          if (!this.closed) this.scheduleRootCheck();
        });
    }, intervalMs).unref();
  }

  private async checkRoot(): Promise<void> {
    // Silent: a look would only queue behind the stuck calls. The gate says when it answers again.
    if (this.gate.notAnsweringSince !== undefined) return;
    // Taken before the look: an event that arrives during it counts for the next check.
    const strict = this.rootEvent;
    this.rootEvent = false;
    let now: RootIdentity | null;
    try {
      now = (await this.lookAtRoot())?.identity ?? null;
    } catch (error) {
      if (error instanceof FolderNotAnsweringError) return;
      throw error;
    }
    if (this.closed) return;
    if (!this.rescanDue && this.unchanged(now, strict)) return this.rewatchChangedMounts();
    if (now !== null) {
      const how = this.root.kind === 'unmounted' ? 'is mounted again (or was replaced)' : 'is back (or was replaced)';
      this.logger.warn({ folder: this.config.path }, `the watched folder ${this.config.path} ${how}: rescanning it`);
    }
    await this.attach();
  }

  /**
   * A share mounted or unmounted below an inotify root leaves the watches
   * there deaf, without a word from the kernel that Node passes on: they are
   * replaced now, from the mount table (read from /proc, so it never hangs),
   * rather than at the next rescan, minutes away. What the walk finds there
   * is looked at; files no longer seen are left to the rescan.
   */
  private async rewatchChangedMounts(): Promise<void> {
    if (this.inotify === undefined) return;
    const now = this.mountPointsBelow();
    const changed = [...now, ...this.mountsBelow].filter((mountPoint) => now.has(mountPoint) !== this.mountsBelow.has(mountPoint));
    this.mountsBelow = now;
    for (const mountPoint of changed) {
      // Stopped or rebuilt during the walk of the one before: the new watcher walked everything anyway.
      if (this.closed || this.inotify === undefined) return;
      this.logger.info({ folder: this.config.path, mountPoint }, `${mountPoint} was ${now.has(mountPoint) ? 'mounted' : 'unmounted'}: watching what is there now`);
      this.inotify.forget(mountPoint);
      await this.touchFilesIn(mountPoint);
    }
  }

  /** Mount points strictly inside the root, from /proc/self/mountinfo (none where it cannot be read, or the folder has no sub-folders to watch). */
  private mountPointsBelow(): Set<string> {
    if (!this.config.recursive) return new Set();
    let table: string;
    try {
      table = systemSources.mountInfo();
    } catch {
      return new Set();
    }
    const root = this.config.path;
    return new Set(parseMountInfo(table).map((mount) => mount.mountPoint).filter((mountPoint) => isInside(root, mountPoint) && !this.filter.isIgnored(mountPoint)));
  }

  /** Whether the root is as the last attach left it: the same directory watched, still away, or the same empty mount point. */
  private unchanged(now: RootIdentity | null, strict: boolean): boolean {
    switch (this.root.kind) {
      case 'watching':
        return sameRoot(now, this.root.identity, strict);
      case 'away':
        return now === null;
      case 'unmounted':
        return sameRoot(now, this.root.mountPoint, true);
    }
  }

  /** Looks at every file again at the next root check (every few seconds): what happened while the state database did not answer. */
  rescan(): void {
    this.rescanDue = true;
  }

  /** The gate's word on the folder, said once each way. */
  private answeringChanged(answering: boolean, since: number): void {
    const folder = this.config.path;
    this.onProblemChange();
    if (!answering) {
      this.logger.error(
        { folder },
        `${folder} is not answering: a file operation there took over ${this.config.answerTimeoutSeconds} s (a hung network share?). Its files keep their state, other folders carry on, and it is rescanned once it answers`,
      );
      return;
    }
    const seconds = Math.round((Date.now() - since) / 1000);
    this.logger.warn({ folder, silentSeconds: seconds }, `${folder} answers again after ${seconds} s: rescanning it`);
    this.rescanDue = true;
  }

  /**
   * Makes the DB agree with the disk: every file new or changed since its
   * row, every unfinished row not found, and every waiting row the settle
   * rule no longer follows, is handed to the settle rule, whose own stat
   * decides. A file that appeared after the walk passed its directory is
   * then seen as present, not declared gone. This is also each poll or
   * rescan pass; besides the pass memory (kept by poll passes), it holds the
   * folder's unfinished rows and one directory's rows, not all its files.
   */
  private async reconcile(pass: Pass, signal?: AbortSignal): Promise<void> {
    const root = this.config.path;
    const unfinished = (await this.store.unfinished()).filter((job) => job.folder === root);
    const notSeen = new Set(unfinished.map((job) => job.path));
    try {
      for await (const { directory, files } of this.filesUnder(root)) {
        // A pass cut short proves nothing about the files it did not reach.
        if (signal?.aborted || this.closed) {
          this.passMemory.reset();
          return;
        }
        // The walk has left out ignored paths already; only the name remains to check.
        const audio = files.filter((path) => kindFromExtension(path) !== null);
        if (audio.length === 0) continue;
        for (const path of audio) notSeen.delete(path);
        const compare: [string, FileStat][] = [];
        await this.statEach(directory, audio, (path, found) => this.judge(path, found, pass, compare));
        if (compare.length === 0) continue;
        // One query for the directory's rows, not one per file.
        const known = await this.store.versionsInDirectory(root, directory);
        for (const [path, found] of compare) if (needsLook(known.get(path), found)) this.intake.touch(path);
      }
    } catch (error) {
      this.passMemory.reset();
      if (isStoreError(error)) throw error;
      // Said once by answeringChanged; the pass after it answers again looks at everything.
      if (error instanceof FolderNotAnsweringError) return;
      this.logger.error({ err: error, folder: root }, `cannot read the watched folder ${root}: ${(error as Error).message}; check that it exists and is mounted`);
      return;
    }
    if (pass === 'poll') this.passMemory.complete();
    // A row not found may be gone. A waiting row that no check follows (none does after a start; one found the file
    // missing while the root was away a moment) would wait forever.
    for (const job of unfinished) if (notSeen.has(job.path) || (job.state === 'waiting' && !this.intake.follows(job.path))) this.intake.touch(job.path);
  }

  /**
   * Stats each file of `directory` for `judge`. On the root's local disk a
   * stat takes microseconds and waiting for a promise costs more than the
   * stat, so they run synchronously, a few milliseconds at a time so that a
   * huge flat directory or a cold disk does not hold up uploads. Elsewhere (a
   * share, or a share mounted below the root, which could hang) they never
   * block: a few overlap through the gate, to hide each one's round trip.
   * A folder that stops answering ends the pass.
   */
  private async statEach(directory: string, paths: string[], judge: (path: string, found: Found) => void): Promise<void> {
    const rootDevice = this.root.kind === 'watching' ? this.root.identity.dev : undefined;
    const onLocalRootDisk = this.localDisk && (await this.gate.run(() => stat(directory)).catch(unlessNotAnswering))?.dev === rootDevice;
    if (onLocalRootDisk) {
      let since = performance.now();
      for (const path of paths) {
        if (performance.now() - since > SYNC_STATS_MS) {
          await setImmediate();
          since = performance.now();
        }
        judge(path, foundOrUnreadable(() => statFileSync(path)));
      }
      return;
    }
    for (let start = 0; start < paths.length; start += OPERATIONS_AT_ONCE) {
      const chunk = paths.slice(start, start + OPERATIONS_AT_ONCE);
      const found = await Promise.all(chunk.map((path) => this.gate.run(() => statFile(path)).catch((error: unknown): Found => unlessNotAnswering(error) ?? 'unreadable')));
      chunk.forEach((path, i) => judge(path, found[i]!));
    }
  }

  /** The files below `dir` this folder's rules let through; a directory that cannot be read is logged and passed over. */
  private filesUnder(dir: string): ReturnType<typeof walkFiles> {
    return walkFiles(dir, {
      recursive: this.config.recursive,
      run: this.run,
      isIgnored: (path, name) => this.filter.isIgnoredEntry(path, name),
      onDirectory: (directory) => this.inotify?.add(directory),
      onUnreadableDirectory: (unreadable, error) => this.unreadableDirectory(unreadable, error),
    });
  }

  /** A directory a walk could not list: the files in it wait for a pass that can. */
  private unreadableDirectory(directory: string, error: unknown): void {
    // Said once for the folder; it is rescanned once it answers.
    if (error instanceof FolderNotAnsweringError) return;
    const fields = { err: error, folder: this.config.path, directory };
    // Removed or replaced by a file since it was seen: its parent's watch (or the next pass) sees to that.
    if (isGone(error)) return this.logger.debug(fields, `${directory} went away while it was being walked`);
    const then = isPermissionDenied(error) ? 'give the cryomix-watch user access' : "the folder's next rescan or poll tries again";
    this.logger.error(fields, `cannot read ${directory}: ${(error as Error).message}; files there are not found until it can be read (${then})`);
  }

  /** A directory went away: its unfinished files are looked at, and those gone are filed so. */
  private async touchUnfinishedIn(dir: string): Promise<void> {
    for (const job of await this.store.unfinished()) if (job.folder === this.config.path && isInside(dir, job.path)) this.intake.touch(job.path);
  }

  /** A directory created, moved or copied in: its files may have been there before its watch was, so no event named them. */
  private async touchFilesIn(dir: string): Promise<void> {
    if (this.closed) return;
    try {
      for await (const { files } of this.filesUnder(dir)) for (const path of files) if (this.filter.isCandidate(path)) this.intake.touch(path);
    } catch (error) {
      if (isStoreError(error)) throw error;
      this.unreadableDirectory(dir, error);
    }
  }

  /** Touches a file the settle rule must look at now; one to be compared with its row goes on `compare`. */
  private judge(path: string, found: Found, pass: Pass, compare: [string, FileStat][]): void {
    // Gone since the walk listed it, or EIO, EACCES…: the settle rule's own stat decides, and reports an error with a retry.
    if (found === null || found === 'unreadable') return this.intake.touch(path);
    // Noted by poll passes only: a full pass compares every file with the DB anyway, and a startup need not pay for the memory.
    if (pass === 'poll' && this.passMemory.unchanged(path, found)) return;
    compare.push([path, found]);
  }
}

/** What a pass's stat of a listed file found: its version, nothing (gone, or not a regular file), or an error. */
type Found = FileStat | null | 'unreadable';

function foundOrUnreadable(stat: () => FileStat | null): Found {
  try {
    return stat();
  } catch {
    return 'unreadable';
  }
}

/**
 * Whether the settle rule must look at a file: no row yet, a row for another
 * version, a `removed` row (the file is back). A waiting row of the same
 * version is left to the end of the pass, which hands over those the settle
 * rule does not follow: touching one it follows would restart its quiet
 * period (with pollIntervalSeconds below settleSeconds, it would never settle).
 */
function needsLook(job: KnownVersion | undefined, fileStat: FileStat): boolean {
  if (!job || job.state === 'removed') return true;
  return !sameVersion(job, fileStat);
}
