#!/usr/bin/env node
import { Command, CommanderError, Option } from 'commander';
import { commands } from './commands.js';
import { ConfigError, EXIT, PbxsyncError, UsageError, describeError, exitCodeOfError, formatProblem } from '../errors/index.js';

/**
 * The single top-level error boundary: every command's error ends here and becomes an exit code
 * (DESIGN §3): 1 runtime failure, 2 usage or invalid config/mapping. Commands return 0, 3 or 4 themselves.
 */
async function main(argv: string[]): Promise<number> {
  const program = new Command()
    .name('pbxsync')
    .description("Keeps a phone system's users in step with the company directory.")
    .option('-c, --config <file>', 'service configuration', 'service.yml')
    .addOption(new Option('--json', 'machine-readable output on stdout'))
    .exitOverride()
    .showHelpAfterError();
  let exitCode = EXIT.ok as number;
  commands(program, (code) => {
    exitCode = code;
  });
  try {
    await program.parseAsync(argv);
    return exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.exitCode === 0 ? 0 : EXIT.usage;
    }
    const json = argv.includes('--json');
    if (err instanceof ConfigError) {
      // The message of a configuration or mapping error lists its problems already; any it leaves out follow.
      const more = err.problems.map(formatProblem).filter((line) => !err.message.includes(line));
      if (json) process.stdout.write(JSON.stringify({ error: err.message, problems: err.problems }) + '\n');
      else process.stderr.write(`pbxsync: ${[err.message, ...more.map((l) => `  ${l}`)].join('\n')}\n`);
      return exitCodeOfError(err);
    }
    if (err instanceof UsageError) {
      if (json) process.stdout.write(JSON.stringify({ error: err.message }) + '\n');
      else process.stderr.write(`pbxsync: ${err.message}\n`);
      return exitCodeOfError(err);
    }
    // Invariant 6 at the last step before the terminal: a library's message may quote what it was given (a
    // URL with its password). The redactor knows every secret the config loader resolved.
    const { redact } = await import('../log.js');
    const message = redact(describeError(err));
    if (json) process.stdout.write(JSON.stringify({ error: message }) + '\n');
    else process.stderr.write(`pbxsync: ${message}\n`);
    if (!(err instanceof PbxsyncError) && process.env.PBXSYNC_DEBUG) process.stderr.write(`${redact(String((err as Error).stack))}\n`);
    return exitCodeOfError(err);
  }
}

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`pbxsync: ${describeError(err)}\n`);
    process.exitCode = EXIT.failure;
  },
);
