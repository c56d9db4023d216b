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

test('redact finds every secret after the table grew, also secrets sharing their first four characters', (t) => {
  const many = Array.from({ length: 5_000 }, (_, i) => `Grow${i}x${(i * 7919).toString(36)}`);
  for (const s of many) registerSecret(s);
  // Registered twice: still one entry, still masked once.
  registerSecret(many[0]);
  for (const i of [0, 1, 1023, 2047, 4999]) t.is(redact(`a ${many[i]} b`), 'a [redacted] b', many[i]);
  // Same first four characters, so the same probe sequence; the longest match at a position wins.
  registerSecret('samepfx-1');
  registerSecret('samepfx-1-longer');
  registerSecret('samepfx-2');
  t.is(redact('samepfx-1-longer|samepfx-2|samepfx-1|samepfx-3'), '[redacted]|[redacted]|[redacted]|samepfx-3');
  t.is(redact('Grow'), 'Grow');
});
