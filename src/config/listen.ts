import net from 'node:net';

/** A parsed `host:port` listen address. */
export interface ListenAddress {
  /** Host without IPv6 brackets: `127.0.0.1`, `::1`, `localhost`, `0.0.0.0`. */
  host: string;
  port: number;
}

/**
 * Parses `host:port` (`127.0.0.1:9464`, `[::1]:9464`, `localhost:8089`). Throws a plain Error on a malformed
 * value; service.yml values were checked by the schema before they get here.
 */
export function parseListen(listen: string): ListenAddress {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):([0-9]{1,5})$/.exec(listen);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new Error(`"${listen}" is not a host:port listen address`);
  return { host: (m[1] ?? m[2])!, port };
}

/** True for addresses only this machine can reach: 127.0.0.0/8, ::1 (also IPv4-mapped) and `localhost`. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (net.isIPv4(h)) return h.startsWith('127.');
  if (net.isIPv6(h)) {
    if (h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
    return mapped !== null && mapped[1]!.startsWith('127.');
  }
  return false;
}

/** `host:port` as it goes into a URL (IPv6 in brackets). */
export function formatHostPort(host: string, port: number): string {
  return net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}
