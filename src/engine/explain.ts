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
import { STAGING_FOLDER } from '../../connectors/csv/dropFolder.js';
import { UsageError } from '../errors/index.js';

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

/**
 * Finds the binding and PBX user an id names: `source/anchor`, an anchor, an extension, an e-mail or a user id.
 * With `preferred`, that source's bindings win over others the id also names (`explain 3002 --source b`).
 */
async function lookUp(engine: Engine, id: string, preferred?: string): Promise<{ binding?: Binding; user?: PbxUser; also: Binding[] }> {
  const lower = id.toLowerCase();
  const bindings = engine.state.bindings();
  // Anchors are compared exactly (a base64 objectGUID is case-sensitive), e-mail anchors in lower case.
  const named = bindings.filter(
    (b) => `${b.key.source}/${b.key.anchor}` === id || b.key.anchor === id || (id.includes('@') && b.key.anchor === lower) || b.extension === id,
  );
  const ofPreferred = named.filter((b) => b.key.source === preferred);
  const primary = ofPreferred.length > 0 ? ofPreferred : named;
  let user: PbxUser | undefined;
  const target = await engine.openTarget({ readOnly: true });
  try {
    const wanted = new Set(primary.map((b) => b.userId));
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
  const binding = (user && bindings.find((b) => b.userId === user!.id)) ?? primary[0];
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

/** The real path of `p` (symbolic links resolved) when it exists, else `p` resolved. */
async function realPath(p: string): Promise<string> {
  return fs.realpath(p).catch(() => path.resolve(p));
}

function isInside(parent: string, child: string): boolean {
  const relative = path.relative(parent, child);
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}

/**
 * The CSV sources whose own folders hold `file`: the drop folder itself, its `processed/` or `failed/` folder,
 * or the watcher's staging folder inside it (`<folder>/.pbxsync-processing/<slot>/<name>`).
 */
async function csvSourcesHolding(engine: Engine, file: string): Promise<string[]> {
  const dir = path.dirname(await realPath(file));
  const holders: string[] = [];
  for (const s of engine.config.sources) {
    if (!s.csv) continue;
    const [folder, processed, failed] = await Promise.all([s.csv.folder, s.csv.processed, s.csv.failed].map(realPath));
    if (dir === folder || dir === processed || dir === failed || isInside(path.join(folder!, STAGING_FOLDER), dir)) holders.push(s.name);
  }
  return holders;
}

function sourceNames(engine: Engine, which: (type: string) => boolean = () => true): string {
  return engine.config.sources.filter((s) => which(s.type)).map((s) => s.name).join(', ');
}

/** Options of {@link explain}. */
export interface ExplainOptions {
  /** A CSV file to look the source record up in (`--file`). */
  file?: string;
  /** The source whose record and mapping apply (`--source`). */
  source?: string;
}

/**
 * The source whose record explains `id`, in this order: the `source/` prefix of the id (when it names a
 * configured source), `--source`, with `--file` the CSV source whose own folders hold the file (see
 * {@link csvSourcesHolding}), the source whose binding the id names. With `--file` and none of these, the only
 * CSV source; several make the file ambiguous, a usage error that names them. Without `--file`, undefined:
 * every source is looked at in its own inputs.
 * @throws UsageError when a named source does not exist, the prefix and `--source` disagree, `--file` is
 *   given for a source that is not a CSV source, or the file could be the input of several CSV sources.
 */
async function chooseSource(
  engine: Engine,
  id: string,
  options: ExplainOptions,
  managing: () => Promise<string | undefined>,
): Promise<string | undefined> {
  const configured = (name: string) => engine.config.sources.find((s) => s.name === name);
  const slash = id.indexOf('/');
  const prefixed = slash > 0 && configured(id.slice(0, slash)) ? id.slice(0, slash) : undefined;
  if (options.source !== undefined && !configured(options.source)) {
    throw new UsageError(`--source ${options.source}: no source of that name in ${engine.config.file} (the sources are ${sourceNames(engine)})`);
  }
  if (prefixed && options.source !== undefined && options.source !== prefixed) {
    throw new UsageError(`${id} names source ${prefixed}, --source names ${options.source}; give one of them`);
  }
  let chosen = prefixed ?? options.source;
  if (chosen) {
    if (options.file !== undefined && configured(chosen)!.type !== 'csv') {
      throw new UsageError(`--file is read as a CSV source's input, and ${chosen} is a ${configured(chosen)!.type} source`);
    }
    return chosen;
  }
  if (options.file === undefined) return undefined;
  const holders = await csvSourcesHolding(engine, options.file);
  if (holders.length === 1) return holders[0];
  // A binding of a source of another kind says nothing about whose CSV file this is.
  chosen = await managing();
  if (chosen && configured(chosen)?.type === 'csv') return chosen;
  const csvSources = engine.config.sources.filter((s) => s.type === 'csv');
  if (csvSources.length === 1) return csvSources[0]!.name;
  if (csvSources.length === 0) throw new UsageError(`--file is read as a CSV source's input, and ${engine.config.file} has no CSV source`);
  throw new UsageError(
    `${options.file} could be the input of several CSV sources (${holders.length > 1 ? holders.join(', ') : sourceNames(engine, (t) => t === 'csv')}), ` +
      `and ${id} names no user one of them manages: name the source with --source NAME (or explain SOURCE/${slash > 0 ? id.slice(slash + 1) : id})`,
  );
}

/**
 * Explains an identity (anchor, `source/anchor` or e-mail) or an extension from what pbxsync knows: the
 * binding (which source manages it, by which anchor), the PBX user (role, departments, enablement and since
 * when), why it has its extension, and the last run that touched it (audit log). The source record and every
 * mapping decision with the rule that made it come from `options.file`, else from the managing CSV source's
 * processed files (other sources are read); mappings are pure, so re-mapping the record gives the reasons the
 * last run had (unless the mapping file changed since). The file is read as the input of one source, with its
 * mapping: see {@link chooseSource}. `found` is false only when nothing at all is known.
 * @throws UsageError when the source cannot be told (see chooseSource).
 */
export async function explain(engine: Engine, id: string, options: ExplainOptions = {}): Promise<Explanation> {
  let looked: Awaited<ReturnType<typeof lookUp>> | undefined;
  const chosen = await chooseSource(engine, id, options, async () => (looked ??= await lookUp(engine, id)).binding?.key.source);
  // A source chosen otherwise than by the binding: its bindings win over others the id names.
  if (!looked || (chosen && looked.binding?.key.source !== chosen)) looked = await lookUp(engine, id, chosen);
  let { binding, user, also } = looked;
  // `b/3002`: the record's anchor, or the value it is recognised by, is what follows the source's name.
  const needle = chosen && id.startsWith(`${chosen}/`) ? id.slice(chosen.length + 1) : id;

  let found: { identity: Identity; result: MappingResult; source: string } | undefined;
  for (const sourceConfig of engine.config.sources) {
    if (chosen ? sourceConfig.name !== chosen : binding && binding.key.source !== sourceConfig.name) continue;
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
      const identity = read.identities?.find((i) =>
        binding && binding.key.source === sourceConfig.name ? isRecordOf(i, binding, user) : matches(i, needle),
      );
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

  // With several sources, which one's record was looked for (and with which mapping).
  const readAs = options.file && chosen && engine.config.sources.length > 1 ? ` (read as an input of source ${chosen})` : '';
  if (!binding && !user && !found) {
    return {
      found: false,
      text: `nothing known about ${id}: no binding, no PBX user with that extension or e-mail, and no source record${
        options.file ? ` in ${options.file}${readAs}` : ' in the processed files (name the file with --file)'
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
        ? `no source record in ${options.file}${readAs}`
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
