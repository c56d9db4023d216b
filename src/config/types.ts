import type { NumberingPolicy, SafetyPolicy } from '../reconcile/types.js';
import type { RemovalPolicy } from '../mapping/types.js';

/**
 * A resolved secret. Its value is only reachable through `reveal()`; `toString`, `toJSON` and util.inspect
 * print `[redacted]`, so a secret that slips into a log line, a plan or a status page shows nothing.
 */
export interface SecretValue {
  reveal(): string;
  toString(): string;
  toJSON(): string;
}

/** The embedded PBX store. */
export interface EmbeddedTargetConfig {
  type: 'embedded';
  /** lowdb JSON file; default `<stateDir>/pbx.json`. Absolute after loading. */
  storeFile: string;
}

/** 3CX V20 through XAPI. */
export interface ThreeCxTargetConfig {
  type: '3cx';
  /** e.g. https://pbx.example.com:5001 (no /xapi/v1). */
  url: string;
  clientId: string;
  clientSecret: SecretValue;
  /** PEM file of the CA that signed the PBX certificate (on-premises 3CX often has its own). Absolute. */
  caFile?: string;
  concurrency: number;
  writesPerSecond: number;
  /** Page size for listings ($top). */
  pageSize: number;
  /** Request timeout, ms. */
  timeoutMs: number;
}

export type TargetConfig = EmbeddedTargetConfig | ThreeCxTargetConfig;

/** A CSV drop-folder source. All folders absolute after loading. */
export interface CsvSourceSettings {
  folder: string;
  processed: string;
  failed: string;
  /** `upsert`: each file adds or changes users. `snapshot`: each file is the whole population of the source. */
  mode: 'upsert' | 'snapshot';
  /** Column whose value is the identity anchor; `auto`: per row, `Number` when filled, else `EmailAddress` (see connectors/csv/transform.ts resolveKey). */
  keyColumn: string;
  /** `auto` detects comma or semicolon from the header line. */
  delimiter: 'auto' | ',' | ';' | '\t';
  /** `auto` detects UTF-8 (BOM or not), UTF-16LE/BE (BOM) and falls back to Windows-1252 for invalid UTF-8. */
  encoding: 'auto' | 'utf8' | 'utf16le' | 'windows1252';
  /** Format of the report written beside a moved file. */
  report: 'json' | 'csv';
  /** A file counts as complete once its size has not changed for this long (ms). */
  stableMs: number;
  /** Glob-free list of accepted extensions. */
  extensions: string[];
  /** Days moved files and their reports stay in processed/ and failed/ (see pruneMovedFiles); absent: for ever. */
  keepDays?: number;
}

/** One configured source. */
export interface SourceConfig {
  name: string;
  type: 'csv' | 'ldap' | 'm365' | 'google';
  /** Mapping file, absolute after loading. */
  mapping: string;
  /** Overrides the global poll schedule (cron). */
  schedule?: string;
  csv?: CsvSourceSettings;
  /** Type-specific settings of the later connectors, validated by their own config readers. */
  settings: Record<string, unknown>;
}

/** Mail settings: SMTP when `smtpUrl` is set, otherwise `.eml` files in `outbox`. */
export interface MailConfig {
  welcome: boolean;
  /** Recipients of the daemon's alerts (see src/daemon/alerts.ts); empty: none sent. */
  alertsTo: string[];
  from: string;
  smtpUrl?: SecretValue;
  /** Absolute. */
  outbox: string;
}

/** The loaded, validated, defaulted service.yml. Paths are absolute (resolved against the file's folder). */
export interface ServiceConfig {
  /** The file it came from. */
  file: string;
  stateDir: string;
  target: TargetConfig;
  sources: SourceConfig[];
  schedule: {
    /** Incremental polls (cron, node-cron syntax). */
    poll: string;
    /** Nightly full reconciliation (cron). */
    full: string;
    timezone?: string;
  };
  safety: SafetyPolicy & {
    /** Days a saved plan no longer held stays in `<stateDir>/plans/` (see prunePlans). */
    keepPlansDays: number;
    removal: RemovalPolicy;
  };
  numbering: NumberingPolicy;
  mail: MailConfig;
  provisioning: { listen: string; publicUrl: string };
  status: { listen: string; token?: SecretValue };
  apply: { concurrency: number; retries: number; checkpointEvery: number };
  logging: { level: string; file?: string };
}
