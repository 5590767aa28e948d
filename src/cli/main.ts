import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { Command, InvalidArgumentError, Option } from 'commander';
import { STATES } from '../store/states.js';
import { EXIT_OK, reportFatal } from './exitCodes.js';

function packageVersion(): string {
  const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return manifest.version;
}

function port(value: string): string {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError(`expected a port number 0-65535, got "${value}"`);
  return value;
}

/**
 * Every command is a thin shell over library code; exit statuses are decided
 * in `reportFatal` alone. A command's module is imported when it runs, so
 * that each loads only what it uses: `--version` nothing, `status` no HTTP
 * client, `run` everything (Node's start and these imports are the floor
 * under every startup).
 */
function program(setExit: (code: number) => void): Command {
  const cli = new Command('cryomix-watch')
    .description('Watch folders for finished WAV/MP3 mixes and upload them to the Cryo-mix Mastering API')
    .version(packageVersion())
    .showHelpAfterError();
  const withConfig = (command: Command) =>
    command.option('--config <file>', 'configuration file (default: $CRYOMIX_WATCH_CONFIG, then /etc/cryomix-watch/config.yaml)');

  withConfig(cli.command('run').description('run the daemon in the foreground (JSON logs on stdout)'))
    .option('--sandbox', 'use the embedded API emulator instead of the real service (no key needed)')
    .addOption(new Option('--log-format <format>', 'json for journald/log collectors, pretty for people').choices(['json', 'pretty']).default('json'))
    .action(async (options) => {
      const { runCommand } = await import('./run.js');
      setExit(await runCommand(options));
    });

  withConfig(cli.command('status').description('counts per state, whether uploads are paused, the oldest unfinished file'))
    .option('--json', 'machine-readable output')
    .action(async (options) => {
      const { statusCommand } = await import('./status.js');
      await statusCommand(options);
    });

  withConfig(cli.command('list').description('one row per file: path, state, session id, attempts, last error'))
    .addOption(new Option('--state <state>', 'only files in this state').choices(STATES))
    .option('--json', 'machine-readable output (a JSON array)')
    .action(async (options) => {
      const { listCommand } = await import('./list.js');
      await listCommand(options);
    });

  withConfig(cli.command('retry').description('re-arm failed files (works while the daemon runs)'))
    .argument('[paths...]', 'files to retry')
    .option('--failed', 'every failed file')
    .action(async (paths: string[], options) => {
      const { retryCommand } = await import('./retry.js');
      await retryCommand(paths, options);
    });

  withConfig(cli.command('upload').description('upload files now, in the foreground, recorded in the same state database'))
    .argument('<files...>', 'WAV or MP3 files')
    .option('--sandbox', 'use the embedded API emulator')
    .option('--master', "then master each file and download the masters (the folder's mastering: block, else default settings)")
    .option('--out <dir>', "with --master: put the masters in <dir>/<mix's path in its folder>/ (default: the folder's outputDir, else the current directory)")
    .option('--limit <rate>', 'upload cap for this command, e.g. "4 MB/s", "20 Mbit/s" or "off" (default: uploads.maxBytesPerSecond and uploads.schedule now)')
    .action(async (files: string[], options) => {
      const { uploadCommand } = await import('./upload.js');
      await uploadCommand(files, options);
    });

  withConfig(cli.command('check').description('preflight: config, state database, folders, API key'))
    .option('--json', 'machine-readable output')
    .option('--sandbox', 'check against the embedded API emulator')
    .action(async (options) => {
      const { checkCommand } = await import('./check.js');
      setExit(await checkCommand(options));
    });

  withConfig(cli.command('health').description("ask the running daemon's /healthz (http.listen), with the token: exit 0 when healthy"))
    .action(async (options) => {
      const { healthCommand } = await import('./health.js');
      setExit(await healthCommand(options));
    });

  withConfig(cli.command('systemd-drop-in').description('print the systemd drop-in that lets the service write to the configured folders'))
    .action(async (options) => {
      const { dropInCommand } = await import('./dropIn.js');
      setExit(dropInCommand(options));
    });

  cli
    .command('sandbox')
    .description('run the Cryo-mix API and storage emulator alone')
    .option('--port <port>', 'port to listen on (default: any free port)', port)
    .action(async (options) => {
      const { sandboxCommand } = await import('./sandbox.js');
      setExit(await sandboxCommand(options));
    });

  return cli;
}

async function main(): Promise<number> {
  let exitCode = EXIT_OK;
  try {
    await program((code) => {
      exitCode = code;
    }).parseAsync(process.argv);
  } catch (error) {
    return reportFatal(error);
  }
  return exitCode;
}

// undici parses the API's answers and downloads with llhttp compiled to
// WebAssembly. After a few dozen answers (a daemon asks for one signed URL
// per upload) V8 recompiles that parser with TurboFan in the background,
// which takes ~30 MB of compiler memory for a moment: measured, it was the
// peak RSS of a daemon uploading a large file. Liftoff's baseline code is
// fast enough for what we parse (measured: the same 1 GB/s for a download's
// body, +10% time for 3,000 small answers on loopback). The flag covers all
// of this process's WebAssembly, which is that parser alone, and must be set
// before the first connection, where undici compiles it.
setFlagsFromString('--liftoff-only');

process.exitCode = await main();
