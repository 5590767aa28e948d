import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';

function run(command, args) {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

/** The disk under `dir`: file system, device, and whether the kernel calls it rotational (virtio disks often claim so). */
function diskOf(dir) {
  const [source, fstype] = (run('findmnt', ['-n', '-o', 'SOURCE,FSTYPE', '-T', dir]) ?? '').split(/\s+/);
  const device = source?.startsWith('/dev/') ? source.slice(5).replace(/p?\d+$/, '') : undefined;
  const base = device && existsSync(`/sys/block/${device}`) ? device : source?.slice(5);
  let rotational;
  try {
    rotational = readFileSync(`/sys/block/${base}/queue/rotational`, 'utf8').trim() === '1';
  } catch {
    rotational = undefined;
  }
  return { dir, source, fstype, rotational, kind: rotational === undefined ? 'unknown' : rotational ? 'rotational (as the kernel reports it)' : 'non-rotational (SSD/NVMe)' };
}

export function describeMachine(tmpDir) {
  const cpus = os.cpus();
  return {
    cores: cpus.length,
    cpu: cpus[0]?.model ?? 'unknown',
    memoryGiB: Number((os.totalmem() / 1024 ** 3).toFixed(1)),
    node: process.version,
    kernel: `${os.type()} ${os.release()}`,
    os: /PRETTY_NAME="([^"]*)"/.exec(existsSync('/etc/os-release') ? readFileSync('/etc/os-release', 'utf8') : '')?.[1],
    loadAverage: os.loadavg().map((l) => Number(l.toFixed(2))),
    disk: diskOf(tmpDir),
    curl: run('curl', ['--version'])?.split('\n')[0],
    inotifyMaxUserWatches: Number(run('cat', ['/proc/sys/fs/inotify/max_user_watches'])),
  };
}

export function machineLines(m) {
  return [
    `machine: ${m.cores} cores (${m.cpu}), ${m.memoryGiB} GiB RAM, ${m.os ?? ''} ${m.kernel}, Node ${m.node}`,
    `work dir: ${m.disk.dir} on ${m.disk.source} (${m.disk.fstype}, ${m.disk.kind}); load average at start ${m.loadAverage.join(' ')}`,
  ];
}
