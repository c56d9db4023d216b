/**
 * Test-time TLS material: a throw-away certificate authority and server certificates signed by it.
 *
 * Nothing is pre-generated or committed: the CA is created on first use in each process and cached,
 * so every test worker (and the fake-3CX process) has its own CA. RSA keys come from Node's native
 * `crypto.generateKeyPairSync` (milliseconds) rather than node-forge's pure-JS generator (seconds);
 * node-forge is only used to build and sign the X.509 certificates.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import forge from 'node-forge';

/** A PEM key pair for a TLS server, as accepted by `https.createServer({ key, cert })`. */
export interface IssuedCert {
  /** PKCS#8 PEM private key. */
  key: string;
  /** PEM leaf certificate signed by the test CA. */
  cert: string;
}

/** A test certificate authority. */
export interface TestCa {
  /** The CA certificate (PEM), for `https.Agent({ ca })` or axios. */
  caPem: string;
  /** Path of a temp file holding `caPem` (for `NODE_EXTRA_CA_CERTS` or a config's `caFile`). */
  caFile: string;
  /**
   * Issue a server certificate for the given host names / IP addresses.
   * Always includes `IP:127.0.0.1` and `DNS:localhost` in the SAN so a fake bound to loopback verifies.
   */
  issue(hosts?: string[]): IssuedCert;
}

let cached: TestCa | undefined;

function rsaKey(): forge.pki.rsa.PrivateKey {
  const { privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  return forge.pki.privateKeyFromPem(privateKey) as forge.pki.rsa.PrivateKey;
}

function publicOf(key: forge.pki.rsa.PrivateKey): forge.pki.rsa.PublicKey {
  return forge.pki.setRsaPublicKey(key.n, key.e);
}

function serial(): string {
  // Positive serial: clear the top bit so DER does not read it as negative.
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f;
  return b.toString('hex');
}

function isIp(host: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.includes(':');
}

/**
 * Return this process's test CA, creating it on first call.
 * The same CA is returned on every later call, so certificates issued anywhere in the process
 * verify against one `caPem`.
 */
export function createTestCa(): TestCa {
  if (cached) return cached;

  const caKey = rsaKey();
  const caCert = forge.pki.createCertificate();
  caCert.publicKey = publicOf(caKey);
  caCert.serialNumber = serial();
  const now = new Date();
  caCert.validity.notBefore = new Date(now.getTime() - 60_000);
  caCert.validity.notAfter = new Date(now.getTime() + 7 * 24 * 3600_000);
  const caSubject = [
    { name: 'commonName', value: `pbxsync test CA ${process.pid}` },
    { name: 'organizationName', value: 'pbxsync tests' },
  ];
  caCert.setSubject(caSubject);
  caCert.setIssuer(caSubject);
  caCert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  caCert.sign(caKey, forge.md.sha256.create());
  const caPem = forge.pki.certificateToPem(caCert);

  const dir = mkdtempSync(join(tmpdir(), 'pbxsync-ca-'));
  const caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, caPem);

  // One leaf key per process is enough: tests only care that the chain verifies.
  let leafKey: forge.pki.rsa.PrivateKey | undefined;

  const issue = (hosts: string[] = []): IssuedCert => {
    leafKey ??= rsaKey();
    const all = Array.from(new Set(['127.0.0.1', 'localhost', ...hosts]));
    const cert = forge.pki.createCertificate();
    cert.publicKey = publicOf(leafKey);
    cert.serialNumber = serial();
    cert.validity.notBefore = new Date(Date.now() - 60_000);
    cert.validity.notAfter = new Date(Date.now() + 2 * 24 * 3600_000);
    cert.setSubject([{ name: 'commonName', value: hosts[0] ?? 'localhost' }]);
    cert.setIssuer(caCert.subject.attributes);
    cert.setExtensions([
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: all.map((h) => (isIp(h) ? { type: 7, ip: h } : { type: 2, value: h })),
      },
    ]);
    cert.sign(caKey, forge.md.sha256.create());
    return {
      key: forge.pki.privateKeyToPem(leafKey),
      cert: forge.pki.certificateToPem(cert),
    };
  };

  cached = { caPem, caFile, issue };
  return cached;
}
