import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** inotify instances and watches this process holds, from the kernel's own account (/proc/self/fdinfo). */
export function inotifyInUse(): { instances: number; watches: number } {
  let instances = 0;
  let watches = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    let target: string;
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue; // closed since the listing
    }
    if (target !== 'anon_inode:inotify') continue;
    instances++;
    watches += readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8').split('\n').filter((line) => line.startsWith('inotify wd:')).length;
  }
  return { instances, watches };
}
