#!/usr/bin/env node
/*
 * The machine's own hashing limit over a file:
 *
 *   node bench/lib/hashpass.mjs FILE [CHUNK_BYTES]   → one JSON line
 *
 * One read of the file (synchronous reads of 1 MiB into one buffer), each
 * chunk fed to SHA-256 and then MD5 (node:crypto, native), on one thread:
 * what an uploader that must send SHA-256 and check storage's MD5 has to do
 * at the least, with no HTTP, no event loop, no copies. Times are taken
 * inside the process around the loop, so Node's start is not counted: wall
 * seconds (the rate) and CPU seconds, user and sys, from getrusage (the
 * kernel's accounting that /proc/<pid>/stat shows). The digests come back too:
 * the harness registers the MD5 with the sink and checks uploads against it.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';

const path = process.argv[2];
const chunkBytes = Number(process.argv[3] ?? 1024 * 1024);
const buffer = Buffer.allocUnsafe(chunkBytes);
const sha256 = createHash('sha256');
const md5 = createHash('md5');
const cpu = process.cpuUsage();
const started = performance.now();
const fd = openSync(path, 'r');
let bytes = 0;
for (;;) {
  const read = readSync(fd, buffer, 0, chunkBytes, bytes);
  if (read === 0) break;
  const chunk = buffer.subarray(0, read);
  sha256.update(chunk);
  md5.update(chunk);
  bytes += read;
}
closeSync(fd);
const digests = { sha256: sha256.digest('hex'), md5: md5.digest('base64') };
const seconds = (performance.now() - started) / 1000;
const used = process.cpuUsage(cpu);
console.log(JSON.stringify({ bytes, chunkBytes, seconds, userS: used.user / 1e6, sysS: used.system / 1e6, ...digests }));
