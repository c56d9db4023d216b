import test from 'ava';
import { loadMapping } from '../../src/mapping/load.js';
import { identity, options, userOf } from './_helpers.js';

test('ad.yml: ipPhone digits, telephoneNumber DID, table department, title role', async (t) => {
  const mapping = await loadMapping('mappings/ad.yml', options);
  const user = userOf(
    await mapping.map(
      identity({
        source: 'ad',
        anchor: 'guid-1',
        attributes: { givenName: 'Ann', sn: 'Lee', mail: 'Ann.Lee@example.com', ipPhone: '12-34', telephoneNumber: '+1 201 555 1234', department: 'Customer Support', title: 'Support Manager' },
        groups: ['Staff'],
        origin: { dn: 'CN=Ann Lee,OU=Staff,DC=example,DC=com' },
      }),
    ),
  );
  t.deepEqual(user.extension.kind === 'fixed' && user.extension.value, '1234');
  t.like(user.fields, { dids: ['+12015551234'], department: 'Support', role: 'managers', language: 'EN', email: 'ann.lee@example.com' });
  t.is(mapping.removal.action, 'delete');
});

test('ad.yml: outside the Staff OU is out of scope', async (t) => {
  const mapping = await loadMapping('mappings/ad.yml', options);
  const result = await mapping.map(identity({ attributes: { givenName: 'Svc' }, origin: { dn: 'CN=svc,OU=Service,DC=example,DC=com' } }));
  t.is(result.kind, 'out-of-scope');
});

test('m365.yml: Graph attributes, groups to department and role', async (t) => {
  const mapping = await loadMapping('mappings/m365.yml', options);
  const user = userOf(
    await mapping.map(
      identity({
        source: 'm365',
        attributes: { givenName: 'Ann', surname: 'Lee', mail: 'ann@example.com', businessPhones: ['+1 201 555 2345'], preferredLanguage: 'fr-FR', userType: 'Member' },
        groups: ['PBX Users', 'PBX Support', 'PBX Sales', 'PBX Managers'],
      }),
    ),
  );
  t.like(user.fields, { department: 'Sales', extraDepartments: ['Support'], role: 'managers', language: 'FR', dids: ['+12015552345'] });
  t.deepEqual(user.extension.kind === 'fixed' && user.extension.value, '2345');
});

test('google.yml: nested name fields through expressions, org-unit department', async (t) => {
  const mapping = await loadMapping('mappings/google.yml', options);
  // JSONata may read the clock: a run of this mapping is never skipped as "already applied".
  t.false(mapping.deterministic);
  const user = userOf(
    await mapping.map(
      identity({
        source: 'google',
        attributes: { primaryEmail: 'ann@example.com', name: { givenName: 'Ann', familyName: 'Lee', fullName: 'Ann Lee' }, phones: [{ type: 'work', value: '+12015553456' }] },
        origin: { ou: '/Staff/Sales/West' },
      }),
    ),
  );
  t.like(user.fields, { firstName: 'Ann', lastName: 'Lee', displayName: 'Ann Lee', department: 'Sales', dids: ['+12015553456'] });
  t.deepEqual(user.extension.kind === 'fixed' && user.extension.value, '3456');
});

test('openldap.yml: inetOrgPerson with an allocated extension', async (t) => {
  const mapping = await loadMapping('mappings/openldap.yml', options);
  const user = userOf(
    await mapping.map(
      identity({
        source: 'ldap',
        attributes: { givenName: 'Ann', sn: 'Lee', cn: 'Ann Lee', mail: 'ann@example.org', mobile: '+1 201 555 0111', ou: 'Sales' },
        origin: { dn: 'uid=ann,ou=people,dc=example,dc=org' },
      }),
    ),
  );
  t.like(user.fields, { mobile: '+12015550111', department: 'Sales', role: 'users' });
  t.is(user.extension.kind, 'allocate');
});
