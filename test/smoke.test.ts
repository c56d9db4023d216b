import test from 'ava';
import { parseRole, capRole } from '../src/model/roles.js';

test('parseRole reads the 3CX CSV role cell with typographic quotes', (t) => {
  t.is(parseRole('”<rolename=””system_owners””/>”'), 'system_owners');
  t.is(parseRole('<rolename="managers"/>'), 'managers');
  t.is(parseRole('System Owner'), 'system_owners');
  t.is(parseRole('nobody'), undefined);
  t.is(capRole('system_owners', 'managers'), 'managers');
});
