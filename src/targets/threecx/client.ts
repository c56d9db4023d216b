import { readFileSync } from 'node:fs';
import https from 'node:https';
import http from 'node:http';
import tls from 'node:tls';
import axios, { type AxiosInstance, type AxiosResponse } from 'axios';
import type { SecretValue } from '../../config/types.js';
import { ConfigError, PbxsyncError, RetryableError, TerminalError } from '../../errors/index.js';
import { redact, registerSecret, type Logger } from '../../log.js';
import { RollingWindowGate } from './rate.js';
import type { ODataCollection } from './types.js';
import { parseXapiError, warningsToError } from './warnings.js';

/** Options of {@link XapiClient}. */
export interface XapiClientOptions {
  /** The PBX root, e.g. `https://pbx.example.com:5001` (a trailing `/xapi/v1` is tolerated and stripped). */
  baseUrl: string;
  /** The service principal's number (Integrations > API > Client ID), e.g. `900`. */
  clientId: string;
  clientSecret: SecretValue;
  /** PEM file with the CA(s) that signed the PBX certificate; trusted in addition to the system roots. */
  caFile?: string;
  /** Per-request timeout, ms. */
  timeoutMs: number;
  logger: Logger;
  /** Retries of a retryable failure inside the client before RetryableError reaches the caller. Default 4. */
  maxRetries?: number;
  /**
   * Writes per second at most, in any rolling second. Enforced here as well as by the apply queue, so direct
   * callers (CLI, tests, a second queue) cannot exceed it either. Undefined: no limit.
   */
  writesPerSecond?: number;
  /** First backoff step, ms (doubles per attempt, with jitter). Default 250. */
  retryBaseMs?: number;
  /** Longest the client sleeps before a retry; a longer Retry-After is handed to the caller instead. Default 30 s. */
  maxRetryDelayMs?: number;
}

/** Options of one request. */
export interface RequestOptions {
  /** Query options; `$`-prefixed names are sent as they are, values are URL-encoded. */
  query?: Record<string, string | number | boolean | undefined>;
  /** JSON body. */
  body?: unknown;
  /**
   * Whether the call changes the PBX (counted, rate limited). Default: every method but GET. Read-only
   * actions that 3CX exposes as POST (`Defs/Pbx.GetRoutes`) pass `false`.
   */
  write?: boolean;
  /** Who the call is about, for error messages: `user 200 (Amanda Camden)`. */
  subject?: string;
  signal?: AbortSignal;
  /** Called before each retry with the error that caused it (e.g. to note that a create may have landed). */
  onRetry?: (error: PbxsyncError) => void;
}

/** A successful response. */
export interface XapiResponse<T> {
  status: number;
  data: T;
  /** How many times the request was sent (1 = no retry). A retried create may have landed already. */
  attempts: number;
}

/** OData query of {@link XapiClient.list}. */
export interface ListQuery {
  select?: string;
  expand?: string;
  filter?: string;
  orderby?: string;
  /** `$top` per page. */
  pageSize: number;
}

/**
 * Quotes a string for an OData `$filter` or key literal the way 3CX's own tutorial does: single quotes,
 * with each embedded quote doubled (`O'Brien` → `'O''Brien'`).
 */
export function odataString(value: string): string {
  return "'" + value.replaceAll("'", "''") + "'";
}

interface Token {
  value: string;
  /** Epoch ms after which the token is renewed before use. */
  refreshAt: number;
}

/** Node's error codes for a certificate that could not be verified: never retried, never bypassed. */
const TLS_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND', 'ECONNABORTED', 'ERR_SOCKET_CONNECTION_TIMEOUT', 'EHOSTUNREACH', 'ENETUNREACH']);

/** HTTP statuses worth another try: throttling and gateways/proxies in front of the PBX. */
const RETRY_STATUSES = new Set([408, 429, 502, 503, 504]);

/**
 * HTTP client of the 3CX V20 configuration API (XAPI): OAuth2 client credentials, one shared token,
 * `$top`/`$skip` paging, retries with backoff, and 3CX's `WARNINGS.*` error bodies turned into
 * {@link TerminalError}/{@link ConflictError}/{@link RetryableError} with admin-readable messages.
 */
export class XapiClient {
  private readonly root: string;
  private readonly http: AxiosInstance;
  private readonly agent: https.Agent | http.Agent;
  private readonly logger: Logger;
  private readonly maxRetries: number;
  private readonly retryBaseMs: number;
  private readonly maxRetryDelayMs: number;
  private readonly writeGate?: RollingWindowGate;
  private token?: Token;
  private tokenInFlight?: Promise<Token>;
  private writes = 0;
  private tokenRequests = 0;
  private cappedWarned = new Set<string>();

  constructor(private readonly options: XapiClientOptions) {
    this.logger = options.logger;
    this.maxRetries = options.maxRetries ?? 4;
    this.retryBaseMs = options.retryBaseMs ?? 250;
    this.maxRetryDelayMs = options.maxRetryDelayMs ?? 30_000;
    registerSecret(options.clientSecret.reveal());

    let url: URL;
    try {
      url = new URL(options.baseUrl.replace(/\/+$/, '').replace(/\/xapi\/v1$/i, ''));
    } catch (err) {
      throw new ConfigError(`3CX url "${options.baseUrl}" is not a URL`, [], { cause: err });
    }
    const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
      // The client secret and the bearer token travel in every request: plain HTTP only towards this machine.
      throw new ConfigError(`3CX url "${options.baseUrl}" must use https://`);
    }
    this.root = url.origin + url.pathname.replace(/\/+$/, '');

    if (url.protocol === 'https:') {
      // `ca` replaces Node's trust store, so the system roots are added back: a PBX behind a public
      // certificate keeps working when an admin also configures caFile. Verification is never turned off.
      // The context is built once: handing `ca` to the agent instead makes Node parse all ~140 roots
      // again for every new connection, which cost more CPU than everything else in the benchmark.
      const secureContext = options.caFile
        ? tls.createSecureContext({ ca: [...tls.rootCertificates, readCaFile(options.caFile)] })
        : undefined;
      this.agent = new https.Agent({ keepAlive: true, secureContext });
    } else {
      this.agent = new http.Agent({ keepAlive: true });
    }
    this.http = axios.create({
      baseURL: this.root,
      timeout: options.timeoutMs,
      httpsAgent: this.agent,
      httpAgent: this.agent,
      // Every status is handled here; bodies stay text so an HTML page from a proxy cannot break parsing.
      validateStatus: () => true,
      responseType: 'text',
      transformResponse: [(d: unknown) => d],
      maxRedirects: 0,
      // Environment proxies are not honoured: axios tunnels https through them badly, and the PBX is
      // normally reached directly.
      proxy: false,
    });
    if (options.writesPerSecond !== undefined && options.writesPerSecond > 0) {
      this.writeGate = new RollingWindowGate(options.writesPerSecond, 1000);
    }
  }

  /** Write requests sent so far (every attempt that went out, retries included). */
  writeCount(): number {
    return this.writes;
  }

  /** Token requests sent so far (for tests and metrics). */
  tokenCount(): number {
    return this.tokenRequests;
  }

  /** When the current token will be renewed (epoch ms), or undefined before the first request. */
  tokenRenewsAt(): number | undefined {
    return this.token?.refreshAt;
  }

  /** `GET` and the parsed JSON body. */
  async get<T>(path: string, query?: RequestOptions['query'], options: Omit<RequestOptions, 'query' | 'body'> = {}): Promise<T> {
    return (await this.request<T>('GET', path, { ...options, query })).data;
  }

  /** `POST` and the parsed JSON body (undefined for 204). */
  async post<T>(path: string, body?: unknown, options: Omit<RequestOptions, 'body'> = {}): Promise<T> {
    return (await this.request<T>('POST', path, { ...options, body })).data;
  }

  /** `PATCH` (3CX answers 204). */
  async patch(path: string, body: unknown, options: Omit<RequestOptions, 'body'> = {}): Promise<void> {
    await this.request('PATCH', path, { ...options, body });
  }

  /**
   * Every item of a collection, page by page. 3CX sends no `@odata.nextLink`, so paging is `$top`/`$skip`:
   * a short page normally ends the listing — but a server that caps pages below `$top` also returns short
   * pages, so when `@odata.count` (asked for on the first page) says more exist, paging goes on until an
   * empty page or the count is reached.
   */
  async *list<T>(path: string, query: ListQuery, signal?: AbortSignal): AsyncGenerator<T> {
    let skip = 0;
    let total: number | undefined;
    for (let first = true; ; first = false) {
      const page = await this.get<ODataCollection<T>>(
        path,
        {
          $top: query.pageSize,
          $skip: skip,
          $count: first ? true : undefined,
          $select: query.select,
          $expand: query.expand,
          $filter: query.filter,
          $orderby: query.orderby,
        },
        { signal },
      );
      if (first && typeof page?.['@odata.count'] === 'number') total = page['@odata.count'];
      const items = Array.isArray(page?.value) ? page.value : [];
      for (const item of items) yield item;
      skip += items.length;
      if (items.length === 0 || (total !== undefined && skip >= total)) return;
      if (items.length < query.pageSize) {
        if (total === undefined) return;
        if (!this.cappedWarned.has(path)) {
          this.cappedWarned.add(path);
          this.logger.debug(`3CX returned ${items.length} of ${query.pageSize} requested ${path} items per page; paging on by $count`);
        }
      }
    }
  }

  /**
   * Sends one request with the shared token, retrying retryable failures (network errors, 408/429/502/503/504)
   * up to `maxRetries` times with exponential backoff and jitter (Retry-After wins when sent), and
   * re-authenticating once on 401.
   */
  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<XapiResponse<T>> {
    const write = options.write ?? method !== 'GET';
    const url = path + queryString(options.query);
    let attempts = 0;
    let failures = 0;
    let reauthenticated = false;
    let staleReplays = 0;
    for (;;) {
      options.signal?.throwIfAborted();
      const token = await this.getToken(options.signal);
      attempts++;
      let res: AxiosResponse<string> | undefined;
      let error: PbxsyncError;
      try {
        res = await this.send(method, url, options, token, write);
      } catch (err) {
        error = this.networkError(err, method, path, options.subject);
      }
      if (res) {
        if (res.status >= 200 && res.status < 300) return { status: res.status, data: parseBody<T>(res.data), attempts };
        if (res.status === 401) {
          if (this.token === token) {
            // Our current token was refused. 3CX keeps one token per client: a token issued elsewhere (another
            // pbxsync, a script using the same client id) revokes ours. Re-authenticate once; twice is a
            // credentials or licence problem that no retry fixes.
            if (reauthenticated) throw this.authError(res.data);
            reauthenticated = true;
            this.token = undefined;
          } else if (++staleReplays > 3) {
            throw this.authError(res.data);
          }
          // A 401 for a token already replaced by a concurrent request: just replay with the new one.
          continue;
        }
        error = this.httpError(res, method, path, options);
      }
      error = error!;
      if (!(error instanceof RetryableError) || failures >= this.maxRetries) throw error;
      const delay = error.retryAfterMs ?? this.backoff(failures);
      if (delay > this.maxRetryDelayMs) throw error;
      failures++;
      options.onRetry?.(error);
      this.logger.debug(`3CX ${method} ${path}: ${error.message}; retry ${failures}/${this.maxRetries} in ${delay} ms`);
      await sleep(delay, options.signal);
    }
  }

  /** Stops keep-alive sockets and pending rate-limited writes. */
  close(): void {
    this.writeGate?.clear(new TerminalError('3CX client closed', { code: 'CLOSED' }));
    this.agent.destroy();
  }

  private async send(method: string, url: string, options: RequestOptions, token: Token, write: boolean): Promise<AxiosResponse<string>> {
    const go = () => {
      if (write) this.writes++;
      return this.http.request<string>({
        method,
        url: '/xapi/v1' + url,
        data: options.body === undefined ? undefined : JSON.stringify(options.body),
        headers: {
          Authorization: `Bearer ${token.value}`,
          Accept: 'application/json',
          ...(options.body === undefined ? {} : { 'Content-Type': 'application/json' }),
        },
        signal: options.signal,
      });
    };
    return write && this.writeGate ? this.writeGate.run(go, options.signal) : go();
  }

  /**
   * The shared token, fetched behind one lock: 3CX allows one active token per client id and a new one
   * revokes the old, so concurrent requests must never each ask for their own.
   */
  private async getToken(signal?: AbortSignal): Promise<Token> {
    if (this.token && Date.now() < this.token.refreshAt) return this.token;
    this.tokenInFlight ??= this.fetchToken(signal).finally(() => {
      this.tokenInFlight = undefined;
    });
    const token = await this.tokenInFlight;
    this.token = token;
    return token;
  }

  private async fetchToken(signal?: AbortSignal): Promise<Token> {
    const form = new URLSearchParams({
      client_id: this.options.clientId,
      client_secret: this.options.clientSecret.reveal(),
      grant_type: 'client_credentials',
    });
    for (let failures = 0; ; failures++) {
      const started = Date.now();
      let error: PbxsyncError;
      try {
        this.tokenRequests++;
        const res = await this.http.post<string>('/connect/token', form.toString(), {
          headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
          signal,
        });
        if (res.status === 200) {
          const body = parseBody<{ access_token?: unknown; expires_in?: unknown }>(res.data);
          if (typeof body?.access_token !== 'string' || !body.access_token) {
            throw new TerminalError('3CX /connect/token answered 200 without an access_token', { code: 'XAPI.AUTH' });
          }
          registerSecret(body.access_token);
          const lifetimeMs = tokenLifetimeMs(body.expires_in);
          // Renew a little before expiry so no request is sent with a token about to lapse.
          const margin = Math.min(60_000, lifetimeMs / 10);
          this.logger.debug(`3CX token issued, valid ${Math.round(lifetimeMs / 1000)} s`);
          return { value: body.access_token, refreshAt: started + lifetimeMs - margin };
        }
        if (res.status === 400 || res.status === 401 || res.status === 403) throw this.authError(res.data);
        error = this.httpError(res, 'POST', '/connect/token', {});
      } catch (err) {
        if (err instanceof PbxsyncError) throw err;
        error = this.networkError(err, 'POST', '/connect/token');
      }
      if (!(error instanceof RetryableError) || failures >= this.maxRetries) throw error;
      const delay = error.retryAfterMs ?? this.backoff(failures);
      if (delay > this.maxRetryDelayMs) throw error;
      await sleep(delay, signal);
    }
  }

  private authError(body: string | undefined): TerminalError {
    const said = parseXapiError(body).message;
    return new TerminalError(
      `3CX refused the API client ${this.options.clientId}: check the client id/secret and that XAPI access is enabled` +
        (said ? ` (3CX said: ${redact(said)})` : ''),
      { code: 'XAPI.AUTH' },
    );
  }

  private httpError(res: AxiosResponse<string>, method: string, path: string, options: RequestOptions): PbxsyncError {
    const status = res.status;
    const where = options.subject ?? `${method} ${path}`;
    if (RETRY_STATUSES.has(status)) {
      const retryAfterMs = parseRetryAfter(res.headers['retry-after']);
      return new RetryableError(`${where}: 3CX is busy or unreachable (HTTP ${status}${status === 429 ? ', too many requests' : ''})`, {
        code: `HTTP_${status}`,
        retryAfterMs,
      });
    }
    const parsed = parseXapiError(res.data);
    if (status === 403) {
      return new TerminalError(
        `${where}: 3CX denied the API client ${this.options.clientId} this change (HTTP 403): give its service principal a role with the needed rights`,
        { code: 'XAPI.FORBIDDEN' },
      );
    }
    const mapped = warningsToError(parsed.warnings, { subject: where, body: options.body }, { status });
    if (mapped) return mapped;
    const detail = parsed.message ?? snippet(res.data);
    return new TerminalError(`${where}: 3CX answered HTTP ${status}${detail ? `: ${redact(detail)}` : ''}`, { code: `HTTP_${status}` });
  }

  private networkError(err: unknown, method: string, path: string, subject?: string): PbxsyncError {
    if (err instanceof PbxsyncError) return err;
    const e = err as { code?: string; message?: string; cause?: { code?: string } };
    const code = e.code && e.code !== 'ERR_BAD_REQUEST' ? e.code : e.cause?.code;
    const where = subject ?? `${method} ${path}`;
    if (code === 'ERR_CANCELED' || (err as Error)?.name === 'AbortError' || (err as Error)?.name === 'CanceledError') {
      return new TerminalError(`${where}: cancelled`, { cause: err, code: 'ABORTED' });
    }
    if (code && TLS_CODES.has(code)) {
      return new TerminalError(
        `${where}: the 3CX server certificate could not be verified (${code}); if the PBX uses its own CA, set target.caFile to that CA's PEM file`,
        { cause: err, code: 'TLS' },
      );
    }
    if (code && NETWORK_CODES.has(code)) {
      return new RetryableError(`${where}: cannot reach 3CX at ${this.root} (${code})`, { cause: err, code });
    }
    return new TerminalError(`${where}: request to 3CX failed: ${redact(e.message ?? String(err))}`, { cause: err, code: code ?? 'XAPI' });
  }

  private backoff(failures: number): number {
    const base = Math.min(this.maxRetryDelayMs, this.retryBaseMs * 2 ** failures);
    // "Equal jitter": half fixed, half random, so concurrent retries spread out but never retry at once.
    return Math.round(base / 2 + Math.random() * (base / 2));
  }
}

/**
 * `expires_in` in ms. 3CX before 20.0.9 sent minutes (`60` meaning an hour); from 20.0.9 on it sends
 * seconds as OAuth prescribes. No real token lives two minutes or less, so a value ≤ 120 is read as minutes.
 */
export function tokenLifetimeMs(expiresIn: unknown): number {
  const n = typeof expiresIn === 'number' ? expiresIn : Number(expiresIn);
  if (!Number.isFinite(n) || n <= 0) return 60 * 60_000;
  return n <= 120 ? n * 60_000 : n * 1000;
}

/** Retry-After as ms: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: unknown, now = Date.now()): number | undefined {
  if (typeof value !== 'string' || !value.trim()) return undefined;
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return Math.round(Number(v) * 1000);
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

function queryString(query: RequestOptions['query']): string {
  if (!query) return '';
  const parts: string[] = [];
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') parts.push(`${k}=${encodeURIComponent(String(v))}`);
  return parts.length ? '?' + parts.join('&') : '';
}

function parseBody<T>(text: string | undefined): T {
  if (!text) return undefined as T;
  try {
    return JSON.parse(text) as T;
  } catch {
    return text as T;
  }
}

function snippet(text: string | undefined): string | undefined {
  if (!text) return undefined;
  const plain = text.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim();
  return plain ? plain.slice(0, 120) : undefined;
}

function readCaFile(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read the 3CX caFile ${file}: ${(err as Error).message}`, [], { cause: err });
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
