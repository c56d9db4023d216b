/**
 * What a source says about one person. Sources produce these; mappings consume them. Nothing here is
 * PBX-shaped.
 */
export interface Identity {
  /** The configured source name (e.g. "hr-csv"). */
  source: string;
  /** Immutable id in the source: Graph `id`, Google `id`, AD `objectGUID`, OpenLDAP `entryUUID`, CSV key. */
  anchor: string;
  /** Raw attributes as the source has them (strings, string arrays, booleans, numbers). */
  attributes: Record<string, unknown>;
  /** Flattened group names (nested groups resolved). */
  groups: string[];
  /** Disabled in the source (account disabled, suspended). */
  disabled: boolean;
  /** A delta tombstone: the record was deleted in the source. */
  deleted?: boolean;
  /** Where it was read from, for error messages and `explain`. */
  origin?: IdentityOrigin;
  /**
   * What the anchor stands for, when a source anchors its records by one of several values (a CSV source with
   * `keyColumn: auto`: the Number when filled, else the e-mail). Then a record whose anchor has no binding is
   * still the user its source manages under another anchor: with `extension`, the user bound at the
   * extension the mapping gives the record; with `email`, the user whose e-mail is the record's mapped one.
   * Absent: the anchor alone identifies the record.
   */
  matchBound?: 'extension' | 'email';
  /**
   * The record lists only the attributes its input has (a CSV file names its columns; another file of the
   * same source may have more): an attribute it lacks was not supplied, rather than empty, and the fields
   * read from it are left as the PBX has them (DesiredUser.createOnly). Absent: an attribute the record
   * lacks is empty (a directory leaves out empty attributes).
   */
  partialAttributes?: boolean;
}

/** Location of a record in its source. */
export interface IdentityOrigin {
  file?: string;
  line?: number;
  dn?: string;
  ou?: string;
}

/** A problem with one input record: reported, never fatal for the rest. */
export interface RecordIssue {
  source: string;
  file?: string;
  line?: number;
  /** Column or attribute or field name. */
  field?: string;
  /** The anchor or extension the record was about, if known. */
  record?: string;
  message: string;
}

/**
 * How a source read ends.
 * - `full`: the identities were the source's whole population; identities bound before and absent now have
 *   left scope (removal policy applies) — but only when `complete` is true.
 * - `partial`: only the identities given are to be upserted; absence means nothing (CSV upsert mode).
 * - `delta`: changes since the cursor; `deleted` tombstones remove.
 */
export type ReadMode = 'full' | 'partial' | 'delta';

/** One event of a source read stream. */
export type SourceEvent =
  | { type: 'identity'; identity: Identity }
  /**
   * Identities in order, as the transport delivered them together (a parsed chunk of a file, a page of a
   * directory listing): one event instead of one per identity, which on a 100,000-row file was a share of
   * the read in promises alone. Means the same as an `identity` event for each, in this order.
   */
  | { type: 'identities'; identities: Identity[] }
  | { type: 'issue'; issue: RecordIssue }
  | {
      type: 'end';
      mode: ReadMode;
      /** False when the read stopped early or some pages failed: no removals may follow from it. */
      complete: boolean;
      /** Opaque; persisted only after the operations of this read were applied. */
      cursor?: string;
      /** When the cursor was rejected (expired delta token), the source fell back to a full read. */
      note?: string;
    };

/** Options of one read. */
export interface ReadOptions {
  /** Cursor saved by the last applied read of this source (undefined: first run or forced full). */
  cursor?: string;
  /** Ignore the cursor and read everything. */
  full: boolean;
  signal?: AbortSignal;
  /** Source-specific input, e.g. the CSV file to read for a drop-folder import. */
  input?: string;
  /** What the input is called in issues and record origins, when not `input` (a dropped file read from staging). */
  inputName?: string;
}

/** A source connector instance. Connectors never import the reconciler or a target. */
export interface Source {
  readonly name: string;
  readonly kind: string;
  /** Mapping file path (resolved). */
  readonly mapping: string;
  read(options: ReadOptions): AsyncIterable<SourceEvent>;
  close?(): Promise<void>;
}
