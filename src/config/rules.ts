import { stat } from 'node:fs/promises';
import path from 'node:path';
import { validateDetailed } from 'node-cron';
import { BUILTIN_EMERGENCY, inRange } from '../mapping/numbering.js';
import type { NumberRange } from '../mapping/types.js';
import type { PathSegment } from './document.js';
import { isLoopbackHost, parseListen } from './listen.js';

/** Plain data as it came out of the YAML file; rules must not assume the schema passed. */
export type RawObject = Record<string, unknown>;

/** What a rule can see and how it reports. */
export interface RuleContext {
  raw: RawObject;
  /** Folder of the config file; relative paths resolve against it. */
  baseDir: string;
  error(path: PathSegment[], message: string): void;
  warn(path: PathSegment[], message: string): void;
}

/** One cross-field check. Rules skip values of the wrong type: the schema has already reported those. */
export type Rule = (ctx: RuleContext) => void | Promise<void>;

/** A plain object, or undefined for anything else. */
export function asObject(v: unknown): RawObject | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as RawObject) : undefined;
}

function asString(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function sources(raw: RawObject): Array<[number, RawObject]> {
  const list = Array.isArray(raw.sources) ? (raw.sources as unknown[]) : [];
  return list.flatMap((s, i) => {
    const o = asObject(s);
    return o ? [[i, o] as [number, RawObject]] : [];
  });
}

async function fileKind(file: string): Promise<'file' | 'other' | 'missing'> {
  try {
    return (await stat(file)).isFile() ? 'file' : 'other';
  } catch {
    return 'missing';
  }
}

const uniqueSourceNames: Rule = ({ raw, error }) => {
  const seen = new Map<string, number>();
  for (const [i, s] of sources(raw)) {
    const name = asString(s.name);
    if (name === undefined) continue;
    const first = seen.get(name);
    if (first !== undefined) error(['sources', i, 'name'], `duplicate source name "${name}" (first used by sources[${first}])`);
    else seen.set(name, i);
  }
};

const sourceSettingsMatchType: Rule = ({ raw, error, warn }) => {
  for (const [i, s] of sources(raw)) {
    if (s.type === 'csv' && s.csv === undefined) error(['sources', i, 'csv'], 'a csv source needs a csv block (at least csv.folder)');
    if (typeof s.type === 'string' && s.type !== 'csv' && s.csv !== undefined)
      error(['sources', i, 'csv'], `csv settings only apply to csv sources, this one is ${s.type}; use settings`);
    const settings = asObject(s.settings);
    if (s.type === 'csv' && settings && Object.keys(settings).length > 0)
      warn(['sources', i, 'settings'], 'csv sources ignore settings; use the csv block');
  }
};

function cronProblem(expr: string): string | undefined {
  const result = validateDetailed(expr);
  if (result.valid) return undefined;
  const why = result.errors.map((e) => e.message).join('; ');
  return `invalid cron expression "${expr}"${why ? `: ${why}` : ''}`;
}

const cronExpressions: Rule = ({ raw, error }) => {
  const schedule = asObject(raw.schedule);
  for (const key of ['poll', 'full'] as const) {
    const expr = asString(schedule?.[key]);
    const problem = expr === undefined ? undefined : cronProblem(expr);
    if (problem) error(['schedule', key], problem);
  }
  for (const [i, s] of sources(raw)) {
    const expr = asString(s.schedule);
    const problem = expr === undefined ? undefined : cronProblem(expr);
    if (problem) error(['sources', i, 'schedule'], problem);
  }
};

const timezoneKnown: Rule = ({ raw, error }) => {
  const tz = asString(asObject(raw.schedule)?.timezone);
  if (tz === undefined) return;
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
  } catch {
    error(['schedule', 'timezone'], `unknown time zone "${tz}" (use an IANA name such as Europe/Berlin or UTC)`);
  }
};

function digitRanges(list: unknown): Array<[number, NumberRange]> {
  if (!Array.isArray(list)) return [];
  return list.flatMap((r, i) => {
    const o = asObject(r);
    const from = asString(o?.from);
    const to = asString(o?.to);
    return from !== undefined && to !== undefined && /^\d+$/.test(from) && /^\d+$/.test(to) ? [[i, { from, to }] as [number, NumberRange]] : [];
  });
}

const numberRanges: Rule = ({ raw, error }) => {
  const numbering = asObject(raw.numbering);
  for (const key of ['ranges', 'reserved'] as const) {
    for (const [i, r] of digitRanges(numbering?.[key])) {
      if (r.from.length !== r.to.length)
        error(['numbering', key, i], `from "${r.from}" and to "${r.to}" must have the same number of digits`);
      else if (r.from > r.to) error(['numbering', key, i], `from "${r.from}" is greater than to "${r.to}"`);
    }
  }
};

// A warning, not an error: allocation and the store skip emergency numbers anyway, the range just loses them.
const emergencyOutsideRanges: Rule = ({ raw, warn }) => {
  const numbering = asObject(raw.numbering);
  const ranges = numbering?.ranges === undefined ? [[0, { from: '1000', to: '1999' }] as [number, NumberRange]] : digitRanges(numbering.ranges);
  const configured = Array.isArray(numbering?.emergency) ? (numbering.emergency as unknown[]) : undefined;
  const numbers: Array<[PathSegment[], string]> = configured
    ? configured.flatMap((n, i) => (typeof n === 'string' ? [[['numbering', 'emergency', i], n] as [PathSegment[], string]] : []))
    : [];
  for (const n of BUILTIN_EMERGENCY) if (!numbers.some(([, v]) => v === n)) numbers.push([['numbering', 'ranges'], n]);
  for (const [where, n] of numbers) {
    const hit = ranges.find(([, r]) => inRange(n, r));
    if (hit) warn(where, `emergency number ${n} lies inside range ${hit[1].from}-${hit[1].to}; it will never be allocated`);
  }
};

const mappingFilesExist: Rule = async ({ raw, baseDir, error }) => {
  for (const [i, s] of sources(raw)) {
    const mapping = asString(s.mapping);
    if (!mapping) continue;
    const file = path.resolve(baseDir, mapping);
    const kind = await fileKind(file);
    if (kind === 'missing') error(['sources', i, 'mapping'], `mapping file not found: ${file}`);
    else if (kind === 'other') error(['sources', i, 'mapping'], `mapping is not a file: ${file}`);
  }
};

const threeCxConnection: Rule = async ({ raw, baseDir, error, warn }) => {
  const target = asObject(raw.target);
  if (target?.type !== '3cx') return;
  const url = asString(target.url);
  if (url) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(url);
    } catch {
      error(['target', 'url'], 'must be a URL such as https://pbx.example.com:5001');
    }
    if (parsed) {
      const loopback = isLoopbackHost(parsed.hostname);
      if (parsed.protocol === 'http:' && !loopback)
        error(['target', 'url'], 'must be https:// (plain http:// is only accepted for a loopback address)');
      else if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') error(['target', 'url'], 'must be an https:// URL');
      if (/\/xapi(\/|$)/i.test(parsed.pathname)) warn(['target', 'url'], 'give the PBX base URL; pbxsync adds /xapi/v1 itself');
      if (parsed.username || parsed.password) error(['target', 'url'], 'must not hold credentials; use clientId and clientSecret');
    }
  }
  const caFile = asString(target.caFile);
  if (caFile) {
    const file = path.resolve(baseDir, caFile);
    const kind = await fileKind(file);
    if (kind !== 'file') error(['target', 'caFile'], `CA file ${kind === 'missing' ? 'not found' : 'is not a file'}: ${file}`);
  }
};

const statusNeedsTokenOffLoopback: Rule = ({ raw, error }) => {
  const status = asObject(raw.status);
  const listen = asString(status?.listen);
  if (!listen || status?.token !== undefined) return;
  let host: string;
  try {
    host = parseListen(listen).host;
  } catch {
    return; // the schema reports the malformed address
  }
  if (!isLoopbackHost(host)) error(['status', 'listen'], `${host} is not a loopback address; set status.token to expose /status and /metrics`);
};

const somethingToDo: Rule = ({ raw, warn }) => {
  if (raw.sources === undefined || (Array.isArray(raw.sources) && raw.sources.length === 0))
    warn(['sources'], 'no sources configured; the daemon will have nothing to sync');
};

const provisioningReachable: Rule = ({ raw, warn }) => {
  const p = asObject(raw.provisioning);
  const listen = asString(p?.listen);
  if (!listen || p?.publicUrl !== undefined) return;
  try {
    const { host } = parseListen(listen);
    if (host === '0.0.0.0' || host === '::')
      warn(['provisioning', 'publicUrl'], `not set while listening on ${host}; phones need a reachable URL`);
  } catch {
    // malformed: reported by the schema
  }
};

/** Cross-field rules of service.yml, in the order they report. */
export const RULES: ReadonlyArray<readonly [name: string, rule: Rule]> = [
  ['unique-source-names', uniqueSourceNames],
  ['source-settings-match-type', sourceSettingsMatchType],
  ['cron-expressions', cronExpressions],
  ['timezone-known', timezoneKnown],
  ['number-ranges', numberRanges],
  ['emergency-outside-ranges', emergencyOutsideRanges],
  ['mapping-files-exist', mappingFilesExist],
  ['3cx-connection', threeCxConnection],
  ['status-token-off-loopback', statusNeedsTokenOffLoopback],
  ['something-to-do', somethingToDo],
  ['provisioning-reachable', provisioningReachable],
];
