import { once } from 'node:events';
import type { Writable } from 'node:stream';
import type { Engine } from './engine.js';
import type { PbxUser } from '../model/index.js';
import type { Target } from '../targets/types.js';
import { SECRET_FIELDS } from '../model/index.js';
import { threeCxCsvChunks } from '../../connectors/csv/export.js';

/** Users without their secret fields (what may leave the process in an export). */
export function withoutSecrets(user: PbxUser): Omit<PbxUser, 'vmPin'> {
  const copy: Record<string, unknown> = { ...user };
  for (const f of SECRET_FIELDS) delete copy[f];
  return copy as Omit<PbxUser, 'vmPin'>;
}

/** Text gathered before each write of a JSON export. */
const JSON_CHUNK_CHARS = 1 << 16;

/**
 * The items as the text of `JSON.stringify(items, null, 2) + '\n'`, in chunks: an item at a time, so the
 * whole array and its text are never held at once.
 */
export async function* jsonArrayChunks(items: AsyncIterable<unknown>): AsyncGenerator<string> {
  let chunk = '';
  let count = 0;
  for await (const item of items) {
    // Indented one level, as inside the array (JSON.stringify escapes line breaks inside strings).
    chunk += (count++ === 0 ? '[\n  ' : ',\n  ') + JSON.stringify(item, null, 2).replace(/\n/g, '\n  ');
    if (chunk.length >= JSON_CHUNK_CHARS) {
      yield chunk;
      chunk = '';
    }
  }
  yield count === 0 ? '[]\n' : `${chunk}\n]\n`;
}

/**
 * Writes the target's users to `out` as 3CX import CSV or as JSON (each with the source record that manages
 * it, or null), secrets never included. Streams, a few hundred users at a time, waiting for `out` to drain:
 * the export of a 100,000-user PBX built the whole text first, ~600 MB.
 */
export async function exportUsers(engine: Engine, format: 'csv' | 'json', out: Writable): Promise<void> {
  const target = await engine.openTarget({ readOnly: true });
  try {
    const chunks = format === 'csv' ? threeCxCsvChunks(target.listUsers()) : jsonArrayChunks(jsonUsers(engine, target));
    for await (const chunk of chunks) {
      // A reader that went away (a closed pipe) ends the export: the error is there already, or once() rejects with it.
      if (out.errored) throw out.errored;
      if (!out.write(chunk)) await once(out, 'drain');
    }
  } finally {
    await target.close();
  }
}

async function* jsonUsers(engine: Engine, target: Target): AsyncGenerator<unknown> {
  const bound = new Map(engine.state.bindings().map((b) => [b.userId, b.key]));
  for await (const u of target.listUsers()) {
    const user: Record<string, unknown> = { ...withoutSecrets(u), managedBy: bound.get(u.id) ?? null };
    // The tags an admin sees on the PBX's Users panel: who still lacks an e-mail or a password.
    if (target.statusTags) user.status = target.statusTags(u.id);
    yield user;
  }
}
