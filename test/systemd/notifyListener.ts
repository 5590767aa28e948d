import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

/** Why the listener tests cannot run here, or undefined when python3 is available. */
export function listenerUnavailable(): string | undefined {
  const probe = spawnSync('python3', ['-c', 'import socket; socket.SO_PASSCRED; socket.SCM_CREDENTIALS'], { encoding: 'utf8' });
  if (probe.error) return 'python3 is missing (apt-get install python3): it plays systemd\'s NOTIFY_SOCKET listener';
  if (probe.status !== 0) return `python3 cannot read SCM_CREDENTIALS here: ${probe.stderr.trim()}`;
  return undefined;
}

/*
 * What systemd does with $NOTIFY_SOCKET, reduced: bind an AF_UNIX datagram
 * socket with SO_PASSCRED, and read each datagram with the sender's PID from
 * SCM_CREDENTIALS (the kernel's word, not the sender's), one JSON line each.
 */
const LISTENER = String.raw`
import json, socket, struct, sys
address = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind('\0' + address[1:] if address.startswith('@') else address)
print(json.dumps({'listening': True}), flush=True)
while True:
    data, ancillary, _flags, _addr = s.recvmsg(65536, socket.CMSG_SPACE(12))
    pid = None
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid, _uid, _gid = struct.unpack('iII', payload[:12])
    print(json.dumps({'text': data.decode('utf-8'), 'pid': pid}), flush=True)
`;

export interface Datagram {
  text: string;
  /** The sender's PID as the kernel reports it. */
  pid: number;
}

export class NotifyListener {
  readonly datagrams: Datagram[] = [];
  private readonly child: ChildProcess;
  private waiters: (() => void)[] = [];

  private constructor(child: ChildProcess) {
    this.child = child;
  }

  /** Resolves once the socket is bound, so a sender cannot race it. */
  static async start(address: string): Promise<NotifyListener> {
    const child = spawn('python3', ['-c', LISTENER, address], { stdio: ['ignore', 'pipe', 'pipe'] });
    const listener = new NotifyListener(child);
    let stderr = '';
    child.stderr!.on('data', (data: Buffer) => (stderr += data.toString()));
    const lines = createInterface({ input: child.stdout! });
    await new Promise<void>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`the python3 listener exited (${code}): ${stderr}`)));
      lines.on('line', (line) => {
        const record = JSON.parse(line) as Partial<Datagram> & { listening?: boolean };
        if (record.listening) return resolve();
        listener.datagrams.push(record as Datagram);
        for (const wake of listener.waiters.splice(0)) wake();
      });
    });
    return listener;
  }

  /** The first `count` datagrams, waiting up to `timeoutMs` for them. */
  async received(count: number, timeoutMs = 10_000): Promise<Datagram[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.datagrams.length < count) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`expected ${count} datagrams, got ${JSON.stringify(this.datagrams)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.datagrams.slice(0, count);
  }

  stop(): void {
    this.child.kill();
  }
}
