import { createHash, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { formatHostPort, isLoopbackHost, parseListen } from '../config/listen.js';
import type { SecretValue } from '../config/types.js';
import { ConfigError, TerminalError, describeError } from '../errors/index.js';
import { redact, type Logger } from '../log.js';
import type { Metrics } from './metrics.js';

/** What /healthz reports. */
export interface HealthReport {
  healthy: boolean;
  /** Why not healthy: one line per failing source or check. */
  reasons: string[];
}

/** Options of startStatusServer. */
export interface StatusServerOptions {
  /** `host:port`; port 0 picks a free port. */
  listen: string;
  /** Bearer token for /status and /metrics. Required when `listen` is not a loopback address. */
  token?: SecretValue;
  /** The /status document (the engine's StatusReport). Must hold no secrets; the output is redacted anyway. */
  getStatus: () => Promise<unknown>;
  /** Health for /healthz; default: healthFromStatus(await getStatus()). */
  getHealth?: () => Promise<HealthReport>;
  metrics: Metrics;
  logger: Logger;
  /** Config file named in the ConfigError of a refused listen address. */
  configFile?: string;
}

/** A running status server. */
export interface StatusServer {
  /** Base URL, e.g. `http://127.0.0.1:9464` (with the real port when listening on port 0). */
  url: string;
  close(): Promise<void>;
}

/**
 * Health from a status document shaped like the engine's StatusReport: unhealthy when the last run of a
 * source failed (`sources[].health.ok === false`) or a source is degraded (`sources[].degraded`, its storage
 * or its last dropped file; after those, by source name). Other shapes count as healthy: the process runs.
 */
export function healthFromStatus(status: unknown): HealthReport {
  const sources = (status as { sources?: unknown } | null)?.sources;
  const reasons: string[] = [];
  if (Array.isArray(sources)) {
    const list = sources as Array<{ name?: unknown; health?: { ok?: unknown; error?: unknown }; degraded?: unknown } | null>;
    for (const s of list) {
      if (s?.health?.ok === false) {
        const error = typeof s.health.error === 'string' ? `: ${s.health.error}` : '';
        reasons.push(`source ${String(s.name)}: last run failed${error}`);
      }
    }
    const degraded = list.flatMap((s) => (typeof s?.degraded === 'string' ? [{ name: String(s.name), why: s.degraded }] : []));
    degraded.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const d of degraded) reasons.push(`source ${d.name}: ${d.why}`);
  }
  return { healthy: reasons.length === 0, reasons };
}

// Hashing both sides gives equal-length buffers, so timingSafeEqual never leaks the token's length.
function tokenMatches(header: string | undefined, token: SecretValue): boolean {
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header ?? '');
  if (!m) return false;
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(m[1]!), digest(token.reveal()));
}

function send(res: http.ServerResponse, status: number, contentType: string, body: string, headers: http.OutgoingHttpHeaders = {}): void {
  res.writeHead(status, { 'Content-Type': contentType, 'Cache-Control': 'no-store', ...headers });
  res.end(body);
}

const JSON_TYPE = 'application/json; charset=utf-8';
const TEXT_TYPE = 'text/plain; charset=utf-8';

/**
 * Starts the status server: `GET /healthz` (open; 200 `ok`, or 503 with the reasons), `GET /status`
 * (JSON of getStatus) and `GET /metrics` (Prometheus text). With a token, /status and /metrics need
 * `Authorization: Bearer <token>`. Refuses (ConfigError) to listen beyond loopback without a token,
 * because /status names users, sources and errors.
 */
export async function startStatusServer(options: StatusServerOptions): Promise<StatusServer> {
  const { host, port } = parseListen(options.listen);
  const token = options.token && options.token.reveal() !== '' ? options.token : undefined;
  if (!token && !isLoopbackHost(host)) {
    const message = `status.listen ${options.listen} is not a loopback address; set status.token to expose /status and /metrics`;
    throw new ConfigError(message, [{ file: options.configFile ?? 'service.yml', path: 'status.listen', message }]);
  }
  const logger = options.logger;
  const health = options.getHealth ?? (async () => healthFromStatus(await options.getStatus()));

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const pathname = new URL(req.url ?? '/', 'http://status.invalid').pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, TEXT_TYPE, 'method not allowed\n', { Allow: 'GET, HEAD' });
      return;
    }
    if (pathname === '/healthz') {
      let report: HealthReport;
      try {
        report = await health();
      } catch (err) {
        report = { healthy: false, reasons: [`status unavailable: ${describeError(err)}`] };
      }
      if (report.healthy) send(res, 200, TEXT_TYPE, 'ok\n');
      else send(res, 503, JSON_TYPE, redact(JSON.stringify({ status: 'degraded', reasons: report.reasons })));
      return;
    }
    if (pathname !== '/status' && pathname !== '/metrics') {
      send(res, 404, TEXT_TYPE, 'not found\n');
      return;
    }
    if (token && !tokenMatches(req.headers.authorization, token)) {
      send(res, 401, TEXT_TYPE, 'unauthorized\n', { 'WWW-Authenticate': 'Bearer realm="pbxsync"' });
      return;
    }
    if (pathname === '/status') {
      // redact() on top of Secret's own masking: invariant 6 holds even if a raw value slipped in.
      send(res, 200, JSON_TYPE, redact(JSON.stringify(await options.getStatus(), null, 2)));
      return;
    }
    send(res, 200, options.metrics.registry.contentType, await options.metrics.registry.metrics());
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      logger.error('status request failed', { path: req.url, error: describeError(err) });
      if (!res.headersSent) send(res, 500, JSON_TYPE, JSON.stringify({ error: 'internal error; see the daemon log' }));
      else res.destroy();
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new TerminalError(`the status server cannot listen on ${options.listen} (status.listen): ${describeError(err)}`, { cause: err })));
    server.listen(port, host, () => {
      server.removeAllListeners('error');
      resolve();
    });
  });
  server.on('error', (err) => logger.error('status server error', { error: describeError(err) }));

  const address = server.address() as AddressInfo;
  const url = `http://${formatHostPort(address.address, address.port)}`;
  logger.info('status server listening', { url, auth: token ? 'bearer' : 'none' });
  return {
    url,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // Keep-alive connections (Prometheus scrapers) would otherwise hold close() open.
        server.closeAllConnections();
      }),
  };
}
