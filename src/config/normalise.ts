import path from 'node:path';
import type { RemovalPolicy } from '../mapping/types.js';
import type { NumberingPolicy, SafetyPolicy } from '../reconcile/types.js';
import { parseListen, formatHostPort } from './listen.js';
import type { CsvSourceSettings, SecretValue, ServiceConfig, SourceConfig, TargetConfig } from './types.js';

/**
 * Defaults of every optional service.yml setting. config/service.schema.json shows the same values as
 * `default` annotations (a test keeps them in step). Arrays given in the file replace these, never merge.
 */
export const DEFAULTS = {
  stateDir: 'data',
  threeCx: { concurrency: 4, writesPerSecond: 10, pageSize: 100, timeoutMs: 30000 },
  csv: {
    mode: 'upsert',
    keyColumn: 'auto',
    delimiter: 'auto',
    encoding: 'auto',
    report: 'json',
    stableMs: 2000,
    extensions: ['.csv', '.txt'],
  } satisfies Omit<CsvSourceSettings, 'folder' | 'processed' | 'failed'>,
  schedule: { poll: '*/5 * * * *', full: '30 2 * * *' },
  safety: {
    maxDeletes: 10,
    maxDeletePercent: 10,
    maxDisables: 25,
    maxDisablePercent: 20,
    minSourceRatio: 0.9,
    keepPlansDays: 30,
    removal: { action: 'disable', graceDays: 30 },
  } satisfies SafetyPolicy & { keepPlansDays: number; removal: RemovalPolicy },
  numbering: {
    ranges: [{ from: '1000', to: '1999' }],
    reserved: [],
    emergency: ['911', '112', '15', '17', '18', '999'],
  } satisfies NumberingPolicy,
  mail: { welcome: true, alertsTo: [] as string[], from: 'pbxsync@localhost' },
  provisioning: { listen: '127.0.0.1:8089' },
  status: { listen: '127.0.0.1:9464' },
  apply: { concurrency: 8, retries: 4, checkpointEvery: 1000 },
  logging: { level: 'info' },
} as const;

/** service.yml after schema validation: the shapes are right, optional parts may be missing. */
export interface RawServiceConfig {
  stateDir?: string;
  target?:
    | { type: 'embedded'; storeFile?: string }
    | {
        type: '3cx';
        url: string;
        clientId: string;
        caFile?: string;
        concurrency?: number;
        writesPerSecond?: number;
        pageSize?: number;
        timeoutMs?: number;
      };
  sources?: Array<{
    name: string;
    type: SourceConfig['type'];
    mapping: string;
    schedule?: string;
    csv?: Partial<CsvSourceSettings> & { folder: string };
    settings?: Record<string, unknown>;
  }>;
  schedule?: { poll?: string; full?: string; timezone?: string };
  safety?: Partial<SafetyPolicy> & { keepPlansDays?: number; removal?: Partial<RemovalPolicy> };
  numbering?: Partial<NumberingPolicy>;
  mail?: { welcome?: boolean; alertsTo?: string[]; from?: string; outbox?: string };
  provisioning?: { listen?: string; publicUrl?: string };
  status?: { listen?: string };
  apply?: Partial<ServiceConfig['apply']>;
  logging?: { level?: string; file?: string };
}

/** Secrets resolved by the loader, by config path. */
export interface ResolvedSecrets {
  clientSecret?: SecretValue;
  smtpUrl?: SecretValue;
  statusToken?: SecretValue;
}

const copyRange = (r: { from: string; to: string }) => ({ from: r.from, to: r.to });

/**
 * Builds the typed ServiceConfig from a schema-valid file: defaults filled in, relative paths made absolute
 * against the config file's folder. Pure apart from path arithmetic; every check lives in the rules.
 */
export function normalise(raw: RawServiceConfig, file: string, secrets: ResolvedSecrets): ServiceConfig {
  const baseDir = path.dirname(file);
  const abs = (p: string) => path.resolve(baseDir, p);
  const stateDir = abs(raw.stateDir ?? DEFAULTS.stateDir);

  let target: TargetConfig;
  const t = raw.target ?? { type: 'embedded' as const };
  if (t.type === '3cx') {
    if (!secrets.clientSecret) throw new Error('internal: target.clientSecret was not resolved');
    target = {
      type: '3cx',
      url: t.url.replace(/\/+$/, ''),
      clientId: t.clientId,
      clientSecret: secrets.clientSecret,
      ...(t.caFile !== undefined ? { caFile: abs(t.caFile) } : {}),
      concurrency: t.concurrency ?? DEFAULTS.threeCx.concurrency,
      writesPerSecond: t.writesPerSecond ?? DEFAULTS.threeCx.writesPerSecond,
      pageSize: t.pageSize ?? DEFAULTS.threeCx.pageSize,
      timeoutMs: t.timeoutMs ?? DEFAULTS.threeCx.timeoutMs,
    };
  } else {
    target = { type: 'embedded', storeFile: t.storeFile !== undefined ? abs(t.storeFile) : path.join(stateDir, 'pbx.json') };
  }

  const sources: SourceConfig[] = (raw.sources ?? []).map((s) => {
    const source: SourceConfig = {
      name: s.name,
      type: s.type,
      mapping: abs(s.mapping),
      settings: { ...(s.settings ?? {}) },
    };
    if (s.schedule !== undefined) source.schedule = s.schedule;
    if (s.csv) {
      const folder = abs(s.csv.folder);
      source.csv = {
        folder,
        processed: s.csv.processed !== undefined ? abs(s.csv.processed) : path.join(folder, 'processed'),
        failed: s.csv.failed !== undefined ? abs(s.csv.failed) : path.join(folder, 'failed'),
        mode: s.csv.mode ?? DEFAULTS.csv.mode,
        keyColumn: s.csv.keyColumn ?? DEFAULTS.csv.keyColumn,
        delimiter: s.csv.delimiter ?? DEFAULTS.csv.delimiter,
        encoding: s.csv.encoding ?? DEFAULTS.csv.encoding,
        report: s.csv.report ?? DEFAULTS.csv.report,
        stableMs: s.csv.stableMs ?? DEFAULTS.csv.stableMs,
        // Matching is case-insensitive: files dropped from Windows arrive as .CSV.
        extensions: [...(s.csv.extensions ?? DEFAULTS.csv.extensions)].map((e) => e.toLowerCase()),
        ...(s.csv.keepDays !== undefined ? { keepDays: s.csv.keepDays } : {}),
      };
    }
    return source;
  });

  const safety = raw.safety ?? {};
  const numbering = raw.numbering ?? {};
  const mail = raw.mail ?? {};
  const provisioningListen = raw.provisioning?.listen ?? DEFAULTS.provisioning.listen;
  const { host, port } = parseListen(provisioningListen);
  const logging = raw.logging ?? {};

  return {
    file,
    stateDir,
    target,
    sources,
    schedule: {
      poll: raw.schedule?.poll ?? DEFAULTS.schedule.poll,
      full: raw.schedule?.full ?? DEFAULTS.schedule.full,
      ...(raw.schedule?.timezone !== undefined ? { timezone: raw.schedule.timezone } : {}),
    },
    safety: {
      maxDeletes: safety.maxDeletes ?? DEFAULTS.safety.maxDeletes,
      maxDeletePercent: safety.maxDeletePercent ?? DEFAULTS.safety.maxDeletePercent,
      maxDisables: safety.maxDisables ?? DEFAULTS.safety.maxDisables,
      maxDisablePercent: safety.maxDisablePercent ?? DEFAULTS.safety.maxDisablePercent,
      minSourceRatio: safety.minSourceRatio ?? DEFAULTS.safety.minSourceRatio,
      keepPlansDays: safety.keepPlansDays ?? DEFAULTS.safety.keepPlansDays,
      removal: {
        action: safety.removal?.action ?? DEFAULTS.safety.removal.action,
        graceDays: safety.removal?.graceDays ?? DEFAULTS.safety.removal.graceDays,
      },
    },
    numbering: {
      ranges: (numbering.ranges ?? DEFAULTS.numbering.ranges).map(copyRange),
      reserved: (numbering.reserved ?? DEFAULTS.numbering.reserved).map(copyRange),
      emergency: [...(numbering.emergency ?? DEFAULTS.numbering.emergency)],
    },
    mail: {
      welcome: mail.welcome ?? DEFAULTS.mail.welcome,
      alertsTo: [...(mail.alertsTo ?? DEFAULTS.mail.alertsTo)],
      from: mail.from ?? DEFAULTS.mail.from,
      ...(secrets.smtpUrl ? { smtpUrl: secrets.smtpUrl } : {}),
      outbox: mail.outbox !== undefined ? abs(mail.outbox) : path.join(stateDir, 'outbox'),
    },
    provisioning: {
      listen: provisioningListen,
      publicUrl: (raw.provisioning?.publicUrl ?? `http://${formatHostPort(host, port)}`).replace(/\/+$/, ''),
    },
    status: {
      listen: raw.status?.listen ?? DEFAULTS.status.listen,
      ...(secrets.statusToken ? { token: secrets.statusToken } : {}),
    },
    apply: {
      concurrency: raw.apply?.concurrency ?? DEFAULTS.apply.concurrency,
      retries: raw.apply?.retries ?? DEFAULTS.apply.retries,
      checkpointEvery: raw.apply?.checkpointEvery ?? DEFAULTS.apply.checkpointEvery,
    },
    logging: {
      level: logging.level ?? DEFAULTS.logging.level,
      ...(logging.file !== undefined ? { file: abs(logging.file) } : {}),
    },
  };
}
