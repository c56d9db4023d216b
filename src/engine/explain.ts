import fs from 'node:fs/promises';
import path from 'node:path';
import type { Engine } from './engine.js';
import type { Identity, PbxUser } from '../model/index.js';
import type { Decision, MappingResult } from '../mapping/types.js';
import { readSource } from './read.js';
import { withoutSecrets } from './export.js';
import { recordedInputs } from './lastApplied.js';

function reasonsOf(result: MappingResult): Decision[] {
  return result.kind === 'user' ? result.user.reasons : result.reasons;
}

/** The result of `pbxsync explain`. */
export interface Explanation {
  found: boolean;
  text: string;
  data: unknown;
}

function matches(identity: Identity, id: string): boolean {
  const needle = id.toLowerCase();
  if (identity.anchor.toLowerCase() === needle) return true;
  for (const v of Object.values(identity.attributes)) {
    if (typeof v === 'string' && v.toLowerCase() === needle) return true;
  }
  return false;
}

/** Candidate input files of a CSV source for explain: the newest processed files first. */
async function csvCandidates(folder: string): Promise<string[]> {
  const names = await fs.readdir(folder).catch(() => [] as string[]);
  const files = await Promise.all(
    names
      .filter((n) => !n.includes('.report.') && /\.(csv|txt)$/i.test(n))
      .map(async (n) => ({ file: path.join(folder, n), mtime: (await fs.stat(path.join(folder, n))).mtimeMs })),
  );
  return files.sort((a, b) => b.mtime - a.mtime).map((f) => f.file).slice(0, 20);
}

/**
 * Explains an identity (anchor or e-mail) or an extension: the binding, the PBX user, and every mapping
 * decision with the rule that made it. Mappings are pure, so re-mapping the record gives the reasons the
 * last run had (unless the mapping file changed since).
 */
export async function explain(engine: Engine, id: string, options: { file?: string } = {}): Promise<Explanation> {
  const bindings = engine.state.bindings();
  let binding = bindings.find((b) => b.key.anchor === id || b.extension === id || `${b.key.source}/${b.key.anchor}` === id);

  let found: { identity: Identity; result: MappingResult; source: string } | undefined;
  for (const sourceConfig of engine.config.sources) {
    if (binding && binding.key.source !== sourceConfig.name) continue;
    const source = engine.sources.get(sourceConfig.name)!;
    const mapping = await engine.mapping(sourceConfig.name);
    // The input applied last first: processed/ may have been pruned (`csv.keepDays`) or never held it (`import`).
    const inputs: Array<string | undefined> =
      sourceConfig.type === 'csv'
        ? options.file
          ? [options.file]
          : [...(await recordedInputs(engine, [sourceConfig.name])).map((r) => r.copy), ...(await csvCandidates(sourceConfig.csv!.processed))]
        : [undefined];
    for (const input of inputs) {
      const read = await readSource({ source, mapping, full: true, input, logger: engine.logger, keepIdentities: true });
      const identity = read.identities?.find((i) => (binding ? i.anchor === binding.key.anchor : matches(i, id)));
      if (identity) {
        found = { identity, result: await mapping.map(identity), source: sourceConfig.name };
        break;
      }
    }
    if (found) break;
  }
  if (!binding && found) binding = bindings.find((b) => b.key.source === found!.source && b.key.anchor === found!.identity.anchor);

  let user: PbxUser | undefined;
  const target = await engine.openTarget({ readOnly: true });
  try {
    for await (const u of target.listUsers()) {
      if ((binding && u.id === binding.userId) || (!binding && (u.extension === id || u.email === id.toLowerCase()))) {
        user = u;
        break;
      }
    }
  } finally {
    await target.close();
  }

  const lines: string[] = [];
  if (binding) lines.push(`binding: ${binding.key.source}/${binding.key.anchor} → extension ${binding.extension} (since ${binding.boundAt})`);
  else lines.push(user ? `extension ${user.extension} is not managed by pbxsync (no binding; never changed unless an adoption rule claims it)` : `no binding for ${id}`);
  if (user) lines.push(`PBX user: ${user.extension} ${user.firstName} ${user.lastName} <${user.email ?? ''}> ${user.enabled ? 'enabled' : 'disabled'}`);
  if (found) {
    const origin = found.identity.origin;
    lines.push(`source record: ${found.source} ${found.identity.anchor}${origin?.file ? ` (${origin.file}${origin.line ? `:${origin.line}` : ''})` : ''}`);
    lines.push(`mapping verdict: ${found.result.kind}`);
    for (const d of reasonsOf(found.result)) {
      lines.push(`  ${d.field}${d.value !== undefined ? ` = ${JSON.stringify(d.value)}` : ''} — ${d.reason} [${d.rule}]`);
    }
    if (found.result.kind === 'invalid') for (const i of found.result.issues) lines.push(`  ! ${i.field ?? ''}: ${i.message}`);
  } else {
    lines.push('no source record found (CSV sources are looked up in the input applied last and their processed files; name one with --file)');
  }
  return {
    found: !!(binding || user || found),
    text: lines.join('\n'),
    data: {
      id,
      binding: binding ?? null,
      user: user ? withoutSecrets(user) : null,
      source: found ? { name: found.source, anchor: found.identity.anchor, origin: found.identity.origin ?? null } : null,
      verdict: found?.result.kind ?? null,
      decisions: found ? reasonsOf(found.result) : [],
      issues: found?.result.kind === 'invalid' ? found.result.issues : [],
    },
  };
}
