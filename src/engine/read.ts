import type { Identity, Source } from '../model/index.js';
import type { Mapping, MappingResult } from '../mapping/types.js';
import type { SourceReadResult } from '../reconcile/types.js';
import type { Logger } from '../log.js';

/** Options of readSource. */
export interface ReadSourceOptions {
  source: Source;
  mapping: Mapping;
  cursor?: string;
  full: boolean;
  input?: string;
  /** See ReadOptions.inputName. */
  inputName?: string;
  signal?: AbortSignal;
  logger: Logger;
  /** Called for every identity read (progress display). */
  onIdentity?: (count: number) => void;
  /** Keep the raw identities (explain). */
  keepIdentities?: boolean;
}

/** What one source read produced, mapped. */
export interface MappedRead extends SourceReadResult {
  /** Users mapped in scope; stays valid after `desired` is released once the plan is built. */
  desiredCount: number;
  identities?: Identity[];
  note?: string;
}

/**
 * Reads one source to the end and maps every identity. A source that throws mid-read yields an incomplete
 * result (complete=false) rather than an exception, so the planner removes nobody because of it; the
 * error is kept as an issue.
 */
export async function readSource(options: ReadSourceOptions): Promise<MappedRead> {
  const { source, mapping } = options;
  const result: MappedRead = {
    source: source.name,
    mode: 'partial',
    complete: false,
    count: 0,
    desired: [],
    desiredCount: 0,
    deleted: [],
    outOfScope: [],
    issues: [],
    removal: mapping.removal,
    rules: mapping.rules,
    mappingFile: mapping.ruleFile,
    identities: options.keepIdentities ? [] : undefined,
  };
  let ended = false;
  try {
    const explain = !!options.keepIdentities;
    const take = (mapped: MappingResult, identity: Identity): void => {
      if (mapped.kind === 'user') {
        result.desired.push(mapped.user);
        result.desiredCount++;
      } else if (mapped.kind === 'out-of-scope') result.outOfScope.push(identity.anchor);
      else result.issues.push(...mapped.issues);
    };
    /** Counts and maps one identity; a promise only when the mapping had to run JSONata. */
    const read = (identity: Identity): Promise<void> | undefined => {
      result.count++;
      result.identities?.push(identity);
      if (identity.deleted) {
        result.deleted.push(identity.anchor);
        return undefined;
      }
      const mapped = mapping.map(identity, { explain });
      if (mapped instanceof Promise) return mapped.then((m) => take(m, identity));
      take(mapped, identity);
      return undefined;
    };
    for await (const event of source.read({ cursor: options.cursor, full: options.full, input: options.input, inputName: options.inputName, signal: options.signal })) {
      if (event.type === 'identity') {
        await read(event.identity);
        options.onIdentity?.(result.count);
      } else if (event.type === 'identities') {
        for (const identity of event.identities) {
          const pending = read(identity);
          if (pending) await pending;
        }
        options.onIdentity?.(result.count);
      } else if (event.type === 'issue') {
        result.issues.push(event.issue);
      } else {
        ended = true;
        result.mode = event.mode;
        result.complete = event.complete;
        result.cursor = event.cursor;
        result.note = event.note;
      }
    }
  } catch (err) {
    options.logger.error('source read failed; nothing will be removed because of this read', {
      source: source.name,
      error: err instanceof Error ? err.message : String(err),
    });
    result.complete = false;
    result.issues.push({ source: source.name, message: `read failed: ${err instanceof Error ? err.message : String(err)}` });
    return result;
  }
  if (!ended) {
    result.complete = false;
    result.issues.push({ source: source.name, message: 'read ended without an end marker; treated as incomplete' });
  }
  return result;
}
