#!/usr/bin/env node
// The command's entry point, CommonJS on purpose: Node sizes libuv's thread
// pool from UV_THREADPOOL_SIZE at its first use, and loading an ES module
// already uses it; a CommonJS file runs before anything has. Every file
// operation, DNS lookup and hash runs on that pool, and each call stuck on a
// hung NAS share holds one of its threads until the share answers: at the
// default 4, one hung share stopped the whole daemon. Each watched folder may
// hold at most OPERATIONS_AT_ONCE (pipeline/folder.ts) of these 64; idle
// threads cost about 8 KB each. A value set by the user wins.
process.env.UV_THREADPOOL_SIZE ??= '64';
void import('./main.js');
