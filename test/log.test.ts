import test from 'ava';
import { redact, registerSecret } from '../src/log.js';

test('redact masks registered secrets, longest first, and leaves short digit runs alone', (t) => {
  registerSecret('abcd-secret');
  registerSecret('abcd-secret-and-more');
  registerSecret('Zx9!pass');
  registerSecret('123456'); // a PIN-like value: not registered
  t.is(redact('x abcd-secret-and-more y'), 'x [redacted] y');
  t.is(redact('abcd-secret,Zx9!pass'), '[redacted],[redacted]');
  t.is(redact('call +14155123456'), 'call +14155123456');
  t.is(redact('nothing here'), 'nothing here');
});

test('redact stays linear with many registered secrets', (t) => {
  for (let i = 0; i < 50_000; i++) registerSecret(`Gen${i.toString(36)}Pw${i}`);
  const line = 'user created '.repeat(50) + 'Gen1Pw1 end';
  t.is(redact(line).endsWith('[redacted] end'), true);
});
