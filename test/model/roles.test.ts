import test from 'ava';
import { capRole, parseRole, roleRank, type RoleName } from '../../src/model/roles.js';

const cells: Array<[string, RoleName | undefined]> = [
  ['”<rolename=””system_owners””/>”', 'system_owners'], // as the 3CX manual prints it (seed 000)
  ['<rolename="managers"/>', 'managers'],
  ['<rolename=""receptionists""/>', 'receptionists'],
  ['System Owner', 'system_owners'],
  ['Owner', 'group_owners'],
  ['group administrator', 'group_admins'],
  ['User', 'users'],
  ['system_admins', 'system_admins'],
  ['nobody', undefined],
  ['', undefined],
];

for (const [cell, role] of cells) {
  test(`parseRole(${JSON.stringify(cell)}) → ${role}`, (t) => {
    t.is(parseRole(cell), role);
  });
}

test('roles are ordered and the ceiling caps', (t) => {
  t.true(roleRank('system_owners') > roleRank('system_admins'));
  t.true(roleRank('group_owners') > roleRank('managers'));
  t.is(capRole('system_owners', 'managers'), 'managers');
  t.is(capRole('users', 'managers'), 'users');
});
