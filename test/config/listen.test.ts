import test from 'ava';
import { formatHostPort, isLoopbackHost, parseListen } from '../../src/config/listen.js';

const listens: Array<[string, { host: string; port: number } | RegExp]> = [
  ['127.0.0.1:9464', { host: '127.0.0.1', port: 9464 }],
  ['[::1]:9464', { host: '::1', port: 9464 }],
  ['localhost:0', { host: 'localhost', port: 0 }],
  ['0.0.0.0:8089', { host: '0.0.0.0', port: 8089 }],
  ['9464', /not a host:port/],
  ['host:70000', /not a host:port/],
  ['::1:9464', /not a host:port/],
];
for (const [listen, expected] of listens) {
  test(`parseListen ${listen}`, (t) => {
    if (expected instanceof RegExp) t.throws(() => parseListen(listen), { message: expected });
    else t.deepEqual(parseListen(listen), expected);
  });
}

const hosts: Array<[string, boolean]> = [
  ['127.0.0.1', true],
  ['127.1.2.3', true],
  ['localhost', true],
  ['LOCALHOST', true],
  ['::1', true],
  ['[::1]', true],
  ['::ffff:127.0.0.1', true],
  ['0.0.0.0', false],
  ['::', false],
  ['10.0.0.1', false],
  ['128.0.0.1', false],
  ['pbx.example.com', false],
  ['localhost.example.com', false],
];
for (const [host, loopback] of hosts) {
  test(`isLoopbackHost ${host} → ${loopback}`, (t) => {
    t.is(isLoopbackHost(host), loopback);
  });
}

test('formatHostPort brackets IPv6 only', (t) => {
  t.is(formatHostPort('::1', 80), '[::1]:80');
  t.is(formatHostPort('127.0.0.1', 80), '127.0.0.1:80');
});
