/**
 * Reads one CSV file into the SourceEvent stream: identities for good rows, issues for bad ones, then `end`.
 */
import type { CsvSourceSettings } from '../../src/config/types.js';
import { describeError } from '../../src/errors/index.js';
import type { Identity, RecordIssue, SourceEvent } from '../../src/model/index.js';
import { CsvFileError, type CsvFile } from './client.js';
import { openCsvFileAuto } from './threaded.js';
import { EMAIL_COLUMN, NUMBER_COLUMN, csvRowToIdentity, duplicateKeyMessage, resolveKey, type CsvKey } from './transform.js';

/** Options of {@link readCsvFile}. */
export interface ReadCsvFileOptions {
  /** Source name, stamped on every identity and issue. */
  source: string;
  file: string;
  /**
   * The name issues and record origins give the file, when it is read from elsewhere: a dropped file is read
   * from the watcher's staging folder, but the admin knows it by where it was dropped. Default `file`.
   */
  name?: string;
  settings: CsvSourceSettings;
  signal?: AbortSignal;
}

/** Columns a file must have besides its key column: 3CX refuses a user without a first name. */
const REQUIRED_COLUMNS = ['FirstName'] as const;

/**
 * What a header lacks, as the issue of a file nothing can be read from: the required columns it does not have
 * (named as such), and apart from them the key when no key column is there. With `keyColumn: auto` the key is
 * `Number` or else `EmailAddress` (see {@link resolveKey}), so only a header with neither lacks it, and the
 * message says that one of the two is needed rather than calling either "the" key column. `field` is the first
 * column named. Undefined when the header has what a read needs.
 */
export function missingHeaderColumns(header: readonly string[], key: CsvKey): { field: string; message: string } | undefined {
  const required = REQUIRED_COLUMNS.filter((c) => !header.includes(c));
  const keyMissing = !key.columns.some((c) => header.includes(c));
  if (required.length === 0 && !keyMissing) return undefined;
  const parts: string[] = [];
  if (required.length > 0) {
    parts.push(required.length === 1 ? `no column ${required[0]} (required)` : `no columns ${required.join(', ')} (required)`);
  }
  if (keyMissing) {
    parts.push(
      key.auto
        ? `no key column: one of ${NUMBER_COLUMN} or ${EMAIL_COLUMN} is needed to recognise each row`
        : `no key column ${key.columns[0]} (the source's keyColumn)`,
    );
  }
  const field = required[0] ?? key.columns[0]!;
  return { field, message: `the header has ${parts.join(', and ')}; nothing was read` };
}

/**
 * Reads a CSV file as a source read.
 *
 * - The good rows as `identities` events, a batch of rows each (anchor = the key column's cell, see {@link resolveKey}).
 * - One `issue` per rejected row, with line, column and (when known) the key: a row that cannot be parsed, a
 *   row without a key, and the second and later rows with a key already seen in this file ("duplicate
 *   extension 1001, first on line 3"; the first row wins).
 * - Last, `end` with mode `full` for `snapshot` settings and `partial` for `upsert`.
 *
 * `complete` is false when the file could not be read to its end (unreadable, empty, header without the key
 * column or FirstName, an I/O error or abort midway): such a read must remove nobody. In snapshot mode it is
 * also false when a row was rejected for a reason that may hide a person (unparseable, no key): the file is
 * then not the whole population, and removing whoever that row was would be wrong. Duplicates do not count,
 * since the first occurrence stands for the person.
 *
 * Never throws; every failure becomes an issue.
 */
export async function* readCsvFile(options: ReadCsvFileOptions): AsyncGenerator<SourceEvent> {
  const { source, settings, signal } = options;
  const file = options.name ?? options.file;
  const mode = settings.mode === 'snapshot' ? 'full' : 'partial';
  const fileIssue = (message: string, field?: string, line?: number): SourceEvent => ({
    type: 'issue',
    issue: { source, file, line, field, message },
  });

  let csv: CsvFile;
  try {
    csv = await openCsvFileAuto(options.file, { encoding: settings.encoding, delimiter: settings.delimiter, signal });
  } catch (err) {
    // The issue names the file already: the reason alone, or every line would say it twice ("f.csv: f.csv: …").
    yield fileIssue(err instanceof CsvFileError ? err.reason : describeError(err));
    yield { type: 'end', mode, complete: false };
    return;
  }

  try {
    const key = resolveKey(settings.keyColumn, csv.header);
    const problem = missingHeaderColumns(csv.header, key);
    if (problem) {
      yield fileIssue(problem.message, problem.field, csv.headerLine);
      yield { type: 'end', mode, complete: false };
      return;
    }

    const ctx = { source, file, key };
    const firstLine = new Map<string, number>();
    let lost = 0;
    // A batch of rows becomes one `identities` event, cut where an issue comes between (events keep file order).
    for await (const rows of csv.batches) {
      let identities: Identity[] = [];
      for (const row of rows) {
        const result = csvRowToIdentity(row, ctx);
        let issue: RecordIssue | undefined;
        if (result.issue) {
          lost++;
          issue = result.issue;
        } else {
          const { identity, keyColumn: column } = result;
          const first = firstLine.get(identity.anchor);
          if (first === undefined) {
            firstLine.set(identity.anchor, row.line);
            identities.push(identity);
            continue;
          }
          issue = {
            source,
            file,
            line: row.line,
            field: column,
            record: identity.anchor,
            message: duplicateKeyMessage(column, identity.anchor, first),
          };
        }
        if (identities.length > 0) {
          yield { type: 'identities', identities };
          identities = [];
        }
        yield { type: 'issue', issue };
      }
      if (identities.length > 0) yield { type: 'identities', identities };
    }
    if (mode === 'full' && lost > 0) {
      yield {
        type: 'end',
        mode,
        complete: false,
        note: `${lost} row${lost === 1 ? ' was' : 's were'} rejected, so this snapshot may miss people; nobody is removed on its account`,
      };
      return;
    }
    yield { type: 'end', mode, complete: true };
  } catch (err) {
    const aborted = signal?.aborted === true;
    yield fileIssue(
      aborted ? 'the read was cancelled before the end of the file' : `reading stopped: ${describeError(err)}`,
    );
    yield { type: 'end', mode, complete: false };
  } finally {
    await csv.close();
  }
}
