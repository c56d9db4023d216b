import fs from 'node:fs/promises';
import net from 'node:net';
import { SMTPServer } from 'smtp-server';

/**
 * A real SMTP server on loopback that takes `delayMs` per message: it makes the welcome mails of a big import
 * slow enough that a test can interrupt the process in the middle of applying, at a moment chosen by
 * watching the journal, not by a timer. With `auth`, it takes mail only after a login with exactly that
 * user and password (plain AUTH on loopback) and counts the refused logins. With `holdAfter`, messages after
 * that many are received (and counted) but never answered until `release()`: mails the server has while the
 * client waits for its reply, the moment a crash leaves them in doubt.
 */
export async function slowSmtp(
  delayMs: number,
  options: { auth?: { user: string; pass: string }; holdAfter?: number } = {},
): Promise<{
  port: number;
  received: () => number;
  messages: () => string[];
  refusedLogins: () => number;
  release: () => void;
  close: () => Promise<void>;
}> {
  let holdAfter = options.holdAfter ?? Infinity;
  const held: Array<() => void> = [];
  let received = 0;
  let refusedLogins = 0;
  const messages: string[] = [];
  const { auth } = options;
  const server = new SMTPServer({
    authOptional: !auth,
    allowInsecureAuth: true,
    disabledCommands: ['STARTTLS'],
    onAuth(login, _session, callback) {
      if (auth && login.username === auth.user && login.password === auth.pass) return callback(null, { user: login.username });
      refusedLogins++;
      return callback(new Error('Invalid username or password'));
    },
    onData(stream, _session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        received++;
        messages.push(Buffer.concat(chunks).toString('utf8'));
        if (received > holdAfter) held.push(() => callback());
        else setTimeout(() => callback(), delayMs);
      });
    },
  });
  // The killed client's connections end with ECONNRESET; that is the point of the test, not an error.
  server.on('error', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as { port: number }).port;
  return {
    port,
    received: () => received,
    messages: () => [...messages],
    refusedLogins: () => refusedLogins,
    release: () => {
      holdAfter = Infinity;
      for (const answer of held.splice(0)) answer();
    },
    close: () => new Promise((r) => server.close(() => r())),
  };
}

/** The apply journal's records (a torn last line, from a killed writer, is reported as phase 'torn'). */
export async function journalLines(file: string): Promise<Array<{ phase: string; kind: string; opId?: string }>> {
  const text = await fs.readFile(file, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .flatMap((l) => {
      try {
        const line = JSON.parse(l);
        // A batch line holds several operations' records: [opId, kind, source, anchor, extension] each.
        if (Array.isArray(line.ops)) return line.ops.map(([opId, kind]: [string, string]) => ({ phase: line.phase, kind, opId }));
        return [line];
      } catch {
        return [{ phase: 'torn', kind: '' }]; // the line being written when the process died
      }
    });
}


/** The service.yml `mail` block that sends welcome mails through the SMTP server on `port`. */
export function smtpMailConfig(port: number): string {
  return `mail:
  welcome: true
  from: pbx@example.com
  smtpUrl: smtp://127.0.0.1:${port}`;
}

/** A loopback port nobody listens on (bound, then closed): a mail server that is down. */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * A mail server that is there but takes no mail, counting the connections made to it: `drop` accepts each
 * connection and closes it before any greeting (a crashed or overloaded MTA behind a load balancer);
 * `busy` is a real SMTP server that greets every connection with `421` and closes it (RFC 5321 4.3.2:
 * "service not available").
 */
export async function refusingSmtp(how: 'drop' | 'busy'): Promise<{ port: number; connections: () => number; close: () => Promise<void> }> {
  let connections = 0;
  if (how === 'drop') {
    const server = net.createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return {
      port: (server.address() as net.AddressInfo).port,
      connections: () => connections,
      close: () => new Promise((resolve) => server.close(() => resolve())),
    };
  }
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    onConnect(_session, callback) {
      connections++;
      callback(Object.assign(new Error('Service not available, try again later'), { responseCode: 421 }));
    },
  });
  server.on('error', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.server.address() as net.AddressInfo).port,
    connections: () => connections,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
