import type { Engine } from './engine.js';
import type { PbxUser } from '../model/index.js';
import { SECRET_FIELDS } from '../model/index.js';
import { formatThreeCxCsv } from '../../connectors/csv/export.js';

/** Users without their secret fields (what may leave the process in an export). */
export function withoutSecrets(user: PbxUser): Omit<PbxUser, 'vmPin'> {
  const copy: Record<string, unknown> = { ...user };
  for (const f of SECRET_FIELDS) delete copy[f];
  return copy as Omit<PbxUser, 'vmPin'>;
}

/** The target's users as 3CX import CSV or JSON (secrets never included). */
export async function exportUsers(engine: Engine, format: 'csv' | 'json'): Promise<string> {
  const target = await engine.openTarget({ readOnly: true });
  try {
    const users: PbxUser[] = [];
    for await (const u of target.listUsers()) users.push(u);
    if (format === 'csv') return formatThreeCxCsv(users);
    const bound = new Map(engine.state.bindings().map((b) => [b.userId, b.key]));
    return (
      JSON.stringify(
        users.map((u) => ({ ...withoutSecrets(u), managedBy: bound.get(u.id) ?? null })),
        null,
        2,
      ) + '\n'
    );
  } finally {
    await target.close();
  }
}
