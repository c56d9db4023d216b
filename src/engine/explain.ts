import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Engine } from './engine.js';
import type { Identity, PbxUser } from '../model/index.js';
import type { Decision, MappingResult } from '../mapping/types.js';
import type { AuditEntry } from '../reconcile/audit.js';
import type { Binding } from '../reconcile/types.js';
import { readSource } from './read.js';
import { withoutSecrets } from './export.js';
import { recordedInputs } from './lastApplied.js';

function reasonsOf(result: MappingResult): Decision[] {
  return result.kind === 'user' ? result.user.reasons : result.reasons;
}

/** The result of `pbxsync explain`. */
export interface Explanation {
  /** False when pbxsync knows nothing of the id: no binding, no PBX user, no source record. */
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

/**
 * True when `identity` is the record of `binding`: its anchor, or (a CSV `keyColumn: auto` row, see
 * Identity.matchBound) the extension or e-mail by which the planner recognises it as that binding's record.
 */
function isRecordOf(identity: Identity, binding: Binding, user: PbxUser | undefined): boolean {
  if (identity.source !== binding.key.source) return false;
  if (identity.anchor === binding.key.anchor) return true;
  if (identity.matchBound === 'extension') return identity.anchor === binding.extension;
  if (identity.matchBound === 'email') return !!user?.email && identity.anchor === user.email.toLowerCase();
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

/** What the audit log says about one user: how it came under pbxsync, and the last change. */
export interface AuditHistory {
  /** The create or adoption that bound it (the earliest one kept). */
  origin?: AuditEntry;
  /** The newest applied operation. */
  last?: AuditEntry;
  /** The newest applied disable, when no enable came after it. */
  disabled?: AuditEntry;
}

/**
 * Reads the audit log (`<dir>/<YYYY-MM>.jsonl`, oldest month first) for the applied operations on the user
 * `userId`. Lines are parsed only when they name the id, so a month of a 100,000-user import is a scan, not
 * 100,000 parses. Unreadable lines are skipped: the log is history, not state.
 */
export async function auditHistory(dir: string, userId: string): Promise<AuditHistory> {
  const months = (await fs.readdir(dir).catch(() => [] as string[])).filter((n) => /^\d{4}-\d{2}\.jsonl$/.test(n)).sort();
  const out: AuditHistory = {};
  const needle = JSON.stringify(userId);
  for (const month of months) {
    const lines = createInterface({ input: createReadStream(path.join(dir, month), 'utf8'), crlfDelay: Infinity });
    for await (const line of lines) {
      if (!line.includes(needle)) continue;
      let entry: AuditEntry;
      try {
        entry = JSON.parse(line) as AuditEntry;
      } catch {
        continue;
      }
      if (entry.userId !== userId || entry.result !== 'applied') continue;
      if (!out.origin && (entry.op === 'create' || entry.op === 'adopt')) out.origin = entry;
      if (entry.op === 'disable') out.disabled = entry;
      else if (entry.op === 'enable') out.disabled = undefined;
      out.last = entry;
    }
  }
  return out;
}

/** Finds the binding and PBX user an id names: `source/anchor`, an anchor, an extension, an e-mail or a user id. */
async function lookUp(engine: Engine, id: string): Promise<{ binding?: Binding; user?: PbxUser; also: Binding[] }> {
  const lower = id.toLowerCase();
  const bindings = engine.state.bindings();
  // Anchors are compared exactly (a base64 objectGUID is case-sensitive), e-mail anchors in lower case.
  const named = bindings.filter(
    (b) => `${b.key.source}/${b.key.anchor}` === id || b.key.anchor === id || (id.includes('@') && b.key.anchor === lower) || b.extension === id,
  );
  let user: PbxUser | undefined;
  const target = await engine.openTarget({ readOnly: true });
  try {
    const wanted = new Set(named.map((b) => b.userId));
    for await (const u of target.listUsers()) {
      if (wanted.has(u.id) || u.extension === id || u.id === id || (u.email !== null && u.email.toLowerCase() === lower)) {
        // A binding's own user wins over a user that merely has the id as its e-mail or extension.
        if (!user || wanted.has(u.id)) user = u;
        if (wanted.has(u.id)) break;
      }
    }
  } finally {
    await target.close();
  }
  const binding = (user && bindings.find((b) => b.userId === user!.id)) ?? named[0];
  if (binding && user && binding.userId !== user.id) user = undefined;
  return { binding, user, also: named.filter((b) => b !== binding) };
}

function sourceDescription(engine: Engine, name: string): string {
  const config = engine.config.sources.find((s) => s.name === name);
  return config ? `${name} (${config.type}, mapping ${config.mapping})` : `${name} (no longer in ${engine.config.file})`;
}

/** Why the bound user has its extension: how it was first decided, then the binding that keeps it. */
function extensionWhy(binding: Binding, history: AuditHistory, decision: Decision | undefined): string {
  const origin = history.origin;
  let first: string;
  if (origin?.op === 'adopt') first = `taken over with the user, adopted by run ${origin.runId} on ${origin.at}`;
  else if (origin && /extension allocated from/.test(origin.reason)) {
    first = `${origin.reason.slice(origin.reason.indexOf('extension allocated from') + 'extension '.length)} (the next free number) by run ${origin.runId} on ${origin.at}`;
  } else if (origin) first = `from the source record (${origin.record ?? `${origin.source}/${origin.anchor}`}) when run ${origin.runId} created the user on ${origin.at}`;
  else if (decision) first = `${decision.reason} [${decision.rule}]`;
  else first = 'as the user was bound (no audit entry of its creation is kept)';
  return `${first}; sticky: bound to ${binding.key.source}/${binding.key.anchor} since ${binding.boundAt}, it never changes because of a directory change`;
}

function enablement(user: PbxUser, binding: Binding | undefined, history: AuditHistory): string {
  if (user.enabled) return 'enabled';
  if (binding?.disabledAt) return `disabled by pbxsync since ${binding.disabledAt} (its record left the source; the removal policy applies)`;
  const d = history.disabled;
  if (d) return `disabled since ${d.at} by run ${d.runId} (${d.reason})`;
  if (history.origin?.op === 'create') return `disabled (no disable by pbxsync since run ${history.origin.runId} created it: created so, or disabled in the PBX)`;
  return 'disabled in the PBX (not by pbxsync)';
}

/**
 * Explains an identity (anchor, `source/anchor` or e-mail) or an extension from what pbxsync knows: the
 * binding (which source manages it, by which anchor), the PBX user (role, departments, enablement and since
 * when), why it has its extension, and the last run that touched it (audit log). The source record and every
 * mapping decision with the rule that made it come from `options.file`, else from the managing CSV source's
 * processed files (other sources are read); mappings are pure, so re-mapping the record gives the reasons the
 * last run had (unless the mapping file changed since). `found` is false only when nothing at all is known.
 */
export async function explain(engine: Engine, id: string, options: { file?: string } = {}): Promise<Explanation> {
  let { binding, user, also } = await lookUp(engine, id);

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
      const identity = read.identities?.find((i) => (binding ? isRecordOf(i, binding, user) : matches(i, id)));
      if (identity) {
        found = { identity, result: await mapping.map(identity), source: sourceConfig.name };
        break;
      }
    }
    if (found) break;
  }
  if (!binding && found) {
    const f = found;
    binding = engine.state.bindings().find((b) => b.key.source === f.source && b.key.anchor === f.identity.anchor);
    if (binding) user = (await lookUp(engine, `${binding.key.source}/${binding.key.anchor}`)).user;
  }
  const history = user ? await auditHistory(engine.audit.dir, user.id) : {};
  const decisions = found ? reasonsOf(found.result) : [];

  if (!binding && !user && !found) {
    return {
      found: false,
      text: `nothing known about ${id}: no binding, no PBX user with that extension or e-mail, and no source record${
        options.file ? ` in ${options.file}` : ' in the processed files (name the file with --file)'
      }`,
      data: { id, found: false },
    };
  }

  const lines: string[] = [];
  if (binding) {
    lines.push(`binding: ${binding.key.source}/${binding.key.anchor} → extension ${binding.extension} (since ${binding.boundAt})`);
    lines.push(`managed by source ${sourceDescription(engine, binding.key.source)}, anchor ${binding.key.anchor}`);
    lines.push(`extension ${binding.extension}: ${extensionWhy(binding, history, decisions.find((d) => d.field === 'extension'))}`);
    for (const b of also) lines.push(`also named by ${id}: binding ${b.key.source}/${b.key.anchor} → extension ${b.extension} (explain ${b.key.source}/${b.key.anchor})`);
  } else if (user) {
    lines.push(`extension ${user.extension} is not managed by pbxsync (no binding; never changed unless an adoption rule claims it)`);
  } else {
    lines.push(`no binding and no PBX user for ${id}`);
  }
  if (user) {
    const departments = [user.department, ...user.extraDepartments].join(', ');
    lines.push(`PBX user: ${user.extension} ${user.firstName} ${user.lastName} <${user.email ?? ''}>, role ${user.role}, department ${departments}, ${enablement(user, binding, history)}`);
  } else if (binding) {
    lines.push(`PBX user: none (deleted by hand; the next run of ${binding.key.source} re-creates it at ${binding.extension})`);
  }
  if (history.last) {
    const l = history.last;
    lines.push(`last change: run ${l.runId} on ${l.at}: ${l.op}${l.fields?.length ? ` of ${l.fields.join(', ')}` : ''} (${l.reason})`);
  } else if (user && binding) {
    lines.push('last change: none in the audit log');
  }
  if (found) {
    const origin = found.identity.origin;
    lines.push(`source record: ${found.source} ${found.identity.anchor}${origin?.file ? ` (${origin.file}${origin.line ? `:${origin.line}` : ''})` : ''}`);
    lines.push(`mapping verdict: ${found.result.kind}`);
    for (const d of decisions) {
      lines.push(`  ${d.field}${d.value !== undefined ? ` = ${JSON.stringify(d.value)}` : ''} — ${d.reason} [${d.rule}]`);
    }
    if (found.result.kind === 'invalid') for (const i of found.result.issues) lines.push(`  ! ${i.field ?? ''}: ${i.message}`);
  } else {
    lines.push(
      options.file
        ? `no source record in ${options.file}`
        : 'no source record found for the mapping decisions (CSV sources are looked up in the input applied last and their processed files; name one with --file)',
    );
  }
  const pick = (e: AuditEntry | undefined) => (e ? { runId: e.runId, at: e.at, op: e.op, reason: e.reason, fields: e.fields ?? [] } : null);
  return {
    found: true,
    text: lines.join('\n'),
    data: {
      id,
      found: true,
      binding: binding ?? null,
      managedBy: binding ? { source: binding.key.source, anchor: binding.key.anchor } : null,
      user: user ? withoutSecrets(user) : null,
      disabledSince: user && !user.enabled ? (binding?.disabledAt ?? history.disabled?.at ?? null) : null,
      created: pick(history.origin),
      lastChange: pick(history.last),
      source: found ? { name: found.source, anchor: found.identity.anchor, origin: found.identity.origin ?? null } : null,
      verdict: found?.result.kind ?? null,
      decisions,
      issues: found?.result.kind === 'invalid' ? found.result.issues : [],
    },
  };
}
