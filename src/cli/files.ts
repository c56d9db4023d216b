/**
 * The files an admin names on the command line: inputs (`import FILE`, `explain --file`) and outputs
 * (`--out FILE`). A path that cannot work is the admin's to fix, so it is a usage error (exit 2) found before
 * any work is done, and it is never recorded as a failure of a source.
 */
import { constants } from 'node:fs';
import { access, open, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { PbxsyncError, UsageError, describeError } from '../errors/index.js';

/** Error codes that mean "this path names nothing usable", as opposed to a failing disk. */
const BAD_PATH = new Set(['ENOENT', 'ENOTDIR', 'EISDIR', 'EACCES', 'EPERM', 'ELOOP', 'ENAMETOOLONG']);

function codeOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

function kindOf(st: { isDirectory(): boolean }): string {
  return st.isDirectory() ? 'a folder' : 'not a regular file';
}

/**
 * The absolute path of an input file the admin named, once it is known to be an existing regular file this
 * process may open for reading.
 * @param what what the message puts before the path, e.g. `import:` or `--file`.
 * @throws UsageError when it does not exist, is a folder (or a device, a pipe) or may not be read.
 */
export async function inputFile(what: string, file: string): Promise<string> {
  const abs = path.resolve(file);
  try {
    const st = await stat(abs);
    if (!st.isFile()) throw new UsageError(`${what} ${file} is ${kindOf(st)}; name a CSV file`);
    await (await open(abs, 'r')).close();
  } catch (err) {
    if (err instanceof UsageError) throw err;
    const code = codeOf(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new UsageError(`${what} ${file} does not exist`);
    if (code && BAD_PATH.has(code)) throw new UsageError(`${what} ${file} cannot be read (${code})`);
    throw err;
  }
  return abs;
}

/**
 * The absolute path of the file an `--out` option names, once its folder is known to exist and be writable.
 * Nothing is created: a folder that is not there is more often a typing error than a wish (as with `cp` or a
 * shell redirection), and finding out before the work is done spares the admin a long plan or export.
 * @throws UsageError when the folder does not exist or may not be written, or the path names a folder.
 */
export async function outFile(option: string, file: string): Promise<string> {
  const abs = path.resolve(file);
  const dir = path.dirname(abs);
  const st = await stat(dir).catch((err: unknown) => {
    if (codeOf(err) === 'ENOENT' || codeOf(err) === 'ENOTDIR') return undefined;
    throw err;
  });
  if (!st?.isDirectory()) throw new UsageError(`${option} ${file}: the folder ${dir} does not exist; create it first`);
  if ((await stat(abs).catch(() => undefined))?.isDirectory()) throw new UsageError(`${option} ${file} is a folder; name a file in it`);
  await access(dir, constants.W_OK).catch((err: unknown) => {
    throw new UsageError(`${option} ${file}: the folder ${dir} cannot be written (${codeOf(err) ?? describeError(err)})`);
  });
  return abs;
}

/**
 * Writes `file` whole or not at all: `write` fills a temp file beside it, which is renamed in once complete,
 * so a reader of the file never sees half of it. A write that fails (the disk is full) leaves no temp file
 * behind and rejects with an error naming `file`, never an unhandled stream 'error'; an error of `write`'s
 * own (the PBX store cannot be read) is passed on as it is.
 */
export async function writeFileAtomically(file: string, write: (out: Writable) => Promise<void>): Promise<void> {
  const temp = `${file}.${process.pid}.tmp`;
  const fail = (err: unknown): PbxsyncError => new PbxsyncError(`cannot write ${file}: ${describeError(err)}`, { cause: err, code: 'WRITE' });
  // Opened here, not by createWriteStream: an open that fails is a rejection, not an 'error' event later.
  const handle = await open(temp, 'wx').catch((err: unknown) => {
    throw fail(err);
  });
  const stream = handle.createWriteStream();
  // WARNING: a write error is emitted as 'error', and an 'error' nobody listens to ends the process. Kept
  // as `stream.errored`, it reaches the writer at its next write, and `finished` below.
  stream.on('error', () => undefined);
  const discard = async (): Promise<void> => {
    stream.destroy();
    await rm(temp, { force: true });
  };
  try {
    await write(stream);
  } catch (err) {
    await discard();
    throw stream.errored ? fail(stream.errored) : err;
  }
  try {
    stream.end();
    await finished(stream);
    await rename(temp, file);
  } catch (err) {
    await discard();
    throw fail(err);
  }
}
