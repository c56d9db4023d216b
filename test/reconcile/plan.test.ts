import test, { type ExecutionContext } from 'ava';
import type { PbxUser } from '../../src/model/index.js';
import type { Plan } from '../../src/reconcile/types.js';
import {
  allocate,
  binding,
  daysAgo,
  desired,
  fixed,
  pbxUser,
  planOf,
  read,
  sig,
  type Scenario,
} from './_builders.js';

interface Row extends Scenario {
  name: string;
  /** Expected operations in plan order, as `sig()` prints them. */
  ops: string[];
  /** Further checks on the plan (reasons, summary, departments, notes). */
  check?: (t: ExecutionContext, p: Plan) => void;
}

const amanda = pbxUser({ extension: '200', firstName: 'Amanda', lastName: 'Camden', email: 'amanda@example.com' });
const anna = (o: Parameters<typeof desired>[0] = {}) => desired({ line: 2, ...o });
/** Amanda's own row (what `amanda` holds) with these fields on top. */
const amandaRow = (fields: Partial<PbxUser>, o: Parameters<typeof desired>[0] = {}) =>
  anna({ ...o, fields: { firstName: 'Amanda', lastName: 'Camden', email: 'amanda@example.com', ...fields } });

const reasonOf = (p: Plan, kind: string): string => p.operations.find((o) => o.kind === kind)?.reason ?? '';

const rows: Row[] = [
  // ---- creates
  {
    name: 'create with a fixed extension',
    sources: [read({ desired: [anna({ extension: fixed('300') })] })],
    ops: ['create 300 a1 firstName,lastName,email,enabled'],
    check: (t, p) => {
      t.is(reasonOf(p, 'create'), 'new in inbox (line 2)');
      t.is(p.summary.create, 1);
    },
  },
  {
    name: 'create with an allocated extension skips PBX, bound and planned numbers',
    users: [pbxUser({ id: 'x', extension: '1000', email: 'x@example.com' })],
    // a2 is bound to 1001 but its user vanished: the number stays reserved (sticky); a2 is in the read, so it
    // is re-created there and the allocator must skip 1001.
    bindings: [binding('a2', 'gone', '1001')],
    sources: [
      read({
        desired: [
          anna({ anchor: 'a1' }),
          anna({ anchor: 'a2', line: 3, fields: { firstName: 'Bo', email: 'bo@example.com' } }),
          anna({ anchor: 'a3', line: 4, fields: { firstName: 'Cy', email: 'cy@example.com' } }),
        ],
      }),
    ],
    ops: ['create 1001 a2 firstName,email,enabled', 'create 1002 a1 firstName,lastName,email,enabled', 'create 1003 a3 firstName,email,enabled'],
  },
  {
    name: 'allocation in exhausted ranges is a conflict',
    users: [pbxUser({ id: 'x', extension: '10', email: null }), pbxUser({ id: 'y', extension: '11', email: null })],
    sources: [read({ desired: [anna({ extension: allocate({ from: '10', to: '11' }) })] })],
    ops: ['conflict  a1'],
    check: (t, p) => t.true(reasonOf(p, 'conflict').startsWith('no free extension in 10-11')),
  },
  {
    name: 'an invalid fixed extension is a record error, not an operation',
    sources: [read({ desired: [anna({ extension: fixed('112') })] })],
    ops: [],
    check: (t, p) => {
      t.is(p.summary.errors, 1);
      t.regex(p.issues[0].message, /emergency/);
    },
  },
  // ---- updates
  {
    name: 'unchanged bound user: no operation',
    users: [amanda],
    bindings: [binding('a1', 'u200', '200')],
    sources: [read({ desired: [anna({ fields: { firstName: 'Amanda', lastName: 'Camden', email: 'amanda@example.com' } })] })],
    ops: [],
    check: (t, p) => t.is(p.summary.unchanged, 1),
  },
  {
    name: 'normalisation: case, whitespace and list order are not changes',
    users: [pbxUser({ dids: ['+4930111', '+4930222'], phones: [{ mac: '001565aabbcc' }] })],
    bindings: [binding('a1', 'u200', '200')],
    sources: [
      read({
        desired: [
          anna({
            fields: {
              firstName: ' Amanda',
              email: 'Amanda@Example.COM ',
              dids: ['+4930222', '+4930111'],
              phones: [{ mac: '00:15:65:AA:BB:CC' }],
              displayName: '',
            },
          }),
        ],
      }),
    ],
    ops: [],
    check: (t, p) => t.is(p.summary.unchanged, 1),
  },
  {
    name: 'update compares only managed fields; an unmanaged field is never touched',
    users: [pbxUser({ mobile: '+491701234567', language: 'de' })],
    bindings: [binding('a1', 'u200', '200')],
    sources: [read({ desired: [anna({ fields: { firstName: 'Amanda', email: 'amanda.camden@example.com' } })] })],
    ops: ['update 200 a1 email'],
    check: (t, p) => {
      const op = p.operations[0];
      t.deepEqual(op.before, { email: 'amanda@example.com' });
      t.deepEqual(op.after, { email: 'amanda.camden@example.com' });
      t.is(op.reason, 'e-mail changed in inbox (line 2)');
    },
  },
  {
    name: 'rename: Amanda Camden → Noelle Melton with a new e-mail is one update, extension and phones untouched',
    users: [pbxUser({ phones: [{ mac: '001565aabbcc', model: 'Yealink T46U' }], dids: ['+4930200'] })],
    bindings: [binding('a1', 'u200', '200')],
    sources: [
      read({
        desired: [anna({ line: 14, extension: fixed('200'), fields: { firstName: 'Noelle', lastName: 'Melton', email: 'noelle.melton@example.com' } })],
      }),
    ],
    ops: ['update 200 a1 firstName,lastName,email'],
    check: (t, p) => {
      const op = p.operations[0];
      t.is(op.userId, 'u200');
      t.deepEqual(op.after, { firstName: 'Noelle', lastName: 'Melton', email: 'noelle.melton@example.com' });
      t.deepEqual(op.before, { firstName: 'Amanda', lastName: 'Camden', email: 'amanda@example.com' });
      t.is(op.reason, 'first name, last name and e-mail changed in inbox (line 14)');
    },
  },
  {
    name: 'options: only the keys the mapping sets are compared, the others are carried',
    users: [pbxUser({ options: { Ringtone: 'a', AllowLanOnly: '1' } })],
    bindings: [binding('a1', 'u200', '200')],
    sources: [read({ desired: [anna({ fields: { options: { Ringtone: 'b' } } })] })],
    ops: ['update 200 a1 options'],
    check: (t, p) => t.deepEqual(p.operations[0].after, { options: { AllowLanOnly: '1', Ringtone: 'b' } }),
  },
  {
    name: 'a null voicemail PIN in the mapping never clears the PBX PIN',
    users: [pbxUser({ vmPin: '8264' })],
    bindings: [binding('a1', 'u200', '200')],
    sources: [read({ desired: [anna({ fields: { firstName: 'Amanda', vmPin: null } })] })],
    ops: [],
  },
  {
    name: 'enable: a user pbxsync disabled is back in scope',
    users: [pbxUser({ enabled: false })],
    bindings: [binding('a1', 'u200', '200', { disabledAt: daysAgo(3) })],
    sources: [read({ desired: [anna({ fields: { firstName: 'Amanda' } })] })],
    ops: ['enable 200 a1 enabled'],
    check: (t, p) => t.deepEqual(p.operations[0].after, { enabled: true }),
  },
  {
    name: 'sticky extension: a changed directory number never changes the bound extension',
    users: [amanda],
    bindings: [binding('a1', 'u200', '200')],
    sources: [read({ desired: [anna({ extension: fixed('300'), fields: { firstName: 'Mandy' } })] })],
    ops: ['update 200 a1 firstName'],
    check: (t, p) => {
      t.is(p.notes?.length, 1);
      t.regex(p.notes?.[0] ?? '', /says extension 300 but the identity keeps 200/);
      t.false(p.operations.some((o) => o.extension === '300'));
    },
  },
  {
    name: 're-create after a manual delete keeps the bound extension',
    bindings: [binding('a1', 'u-deleted', '1500')],
    sources: [read({ desired: [anna()] })],
    ops: ['create 1500 a1 firstName,lastName,email,enabled'],
    check: (t, p) => t.regex(reasonOf(p, 'create'), /deleted by hand; re-created with its bound extension 1500/),
  },
  // ---- adoption
  {
    name: 'no adoption without opt-in: the e-mail held by an unmanaged user is a conflict',
    users: [pbxUser({ extension: '250', email: 'anna@example.com' })],
    sources: [read({ desired: [anna()] })],
    ops: ['conflict  a1'],
    check: (t, p) => t.is(reasonOf(p, 'conflict'), 'e-mail anna@example.com is held by unmanaged user Amanda Camden (250) (inbox/a1 in inbox (line 2))'),
  },
  {
    name: 'adoption by e-mail (opt-in), with the field changes it brings',
    users: [pbxUser({ extension: '250', email: 'Anna@Example.com' })],
    sources: [read({ desired: [anna({ adopt: ['email'] })] })],
    ops: ['adopt 250 a1 firstName,lastName'],
    check: (t, p) => {
      const op = p.operations[0];
      t.is(op.userId, 'u250');
      t.deepEqual(op.after, { firstName: 'Anna', lastName: 'Smith' });
      t.regex(op.reason, /adopted unmanaged user Amanda Camden \(250\) by e-mail match/);
    },
  },
  {
    name: 'adoption by extension (opt-in); e-mail rule listed first but not matching',
    users: [pbxUser({ extension: '250', email: 'other@example.com', firstName: 'Anna', lastName: 'Smith' })],
    sources: [read({ desired: [anna({ extension: fixed('250'), adopt: ['email', 'extension'] })] })],
    ops: ['adopt 250 a1 email'],
  },
  {
    name: 'a bound user is never adopted by another identity',
    users: [pbxUser({ extension: '250', email: 'anna@example.com' })],
    bindings: [binding('other', 'u250', '250')],
    sources: [read({ mode: 'partial', desired: [anna({ adopt: ['email'] })] })],
    ops: ['conflict  a1'],
    check: (t, p) => t.regex(reasonOf(p, 'conflict'), /held by user Amanda Camden \(250\) managed for inbox\/other/),
  },
  {
    name: 'recovery: a pending create from a crashed run is adopted silently, without adoption rules',
    users: [pbxUser({ id: 'new', extension: '1000', firstName: 'Anna', lastName: 'Smith', email: 'anna@example.com' })],
    pendingCreates: [{ key: { source: 'inbox', anchor: 'a1' }, extension: '1000' }],
    sources: [read({ desired: [anna()] })],
    ops: ['adopt 1000 a1'],
    check: (t, p) => {
      t.is(reasonOf(p, 'adopt'), 'recovered from an interrupted run');
      t.is(p.summary.create, 0);
    },
  },
  // ---- conflicts and invariant 3
  {
    name: 'an unmanaged user is never changed or removed',
    users: [amanda],
    sources: [read({ desired: [] })],
    ops: [],
  },
  {
    name: 'conflict: fixed extension held by an unmanaged user',
    users: [amanda],
    sources: [read({ desired: [anna({ extension: fixed('200') })] })],
    ops: ['conflict 200 a1'],
    check: (t, p) => {
      t.true(reasonOf(p, 'conflict').startsWith('extension 200 is held by unmanaged user Amanda Camden'));
      t.deepEqual(p.operations[0].conflict, { field: 'extension', holder: 'unmanaged user Amanda Camden' });
      t.is(p.summary.conflicts, 1);
    },
  },
  {
    name: 'conflict: fixed extension held by a user managed for another identity',
    users: [amanda],
    bindings: [binding('amanda', 'u200', '200')],
    sources: [read({ mode: 'partial', desired: [anna({ extension: fixed('200') })] })],
    ops: ['conflict 200 a1'],
    check: (t, p) => t.regex(reasonOf(p, 'conflict'), /extension 200 is held by user Amanda Camden managed for inbox\/amanda/),
  },
  {
    name: 'conflict: DID and MAC held by an unmanaged user',
    users: [pbxUser({ dids: ['+4930999'], phones: [{ mac: '001565aabbcc' }] })],
    sources: [read({ desired: [anna({ fields: { firstName: 'Anna', dids: ['+4930999'], phones: [{ mac: '00-15-65-AA-BB-CC' }] } })] })],
    ops: ['conflict  a1', 'conflict  a1'],
    check: (t, p) => {
      t.deepEqual(p.operations.map((o) => o.conflict?.field), ['dids', 'phones']);
      t.regex(p.operations[0].reason, /DID \+4930999 is held by unmanaged user Amanda Camden/);
      t.regex(p.operations[1].reason, /phone MAC 001565aabbcc is held by/);
    },
  },
  {
    name: 'conflict on an update: the contested field is dropped, the rest still goes ahead',
    users: [pbxUser({ extension: '200' }), pbxUser({ id: 'x', extension: '300', email: 'taken@example.com', firstName: 'Xavier' })],
    bindings: [binding('a1', 'u200', '200')],
    sources: [read({ desired: [anna({ fields: { firstName: 'Mandy', email: 'taken@example.com' } })] })],
    ops: ['update 200 a1 firstName', 'conflict 200 a1'],
  },
  {
    name: 'two identities with the same fixed extension or e-mail: the second is a conflict',
    sources: [
      read({
        desired: [
          anna({ anchor: 'a1', line: 2, extension: fixed('300') }),
          anna({ anchor: 'a2', line: 3, extension: fixed('300'), fields: { firstName: 'Bo', email: 'bo@example.com' } }),
          anna({ anchor: 'a3', line: 4, fields: { firstName: 'Cy', email: 'anna@example.com' } }),
        ],
      }),
    ],
    ops: ['create 300 a1 firstName,lastName,email,enabled', 'conflict  a3', 'conflict 300 a2'],
    check: (t, p) => {
      t.regex(p.operations.find((o) => o.key?.anchor === 'a2')?.reason ?? '', /extension 300 is also wanted by Anna Smith \(inbox\/a1, also in this run\)/);
      t.regex(p.operations.find((o) => o.key?.anchor === 'a3')?.reason ?? '', /e-mail anna@example.com is also wanted by/);
    },
  },
  {
    name: 'an e-mail released by a managed user in the same run is free for a newcomer',
    users: [pbxUser({ email: 'shared@example.com' })],
    bindings: [binding('amanda', 'u200', '200')],
    sources: [
      read({
        desired: [
          anna({ anchor: 'amanda', line: 2, fields: { email: 'amanda@example.com' } }),
          anna({ anchor: 'a2', line: 3, fields: { firstName: 'Bo', email: 'shared@example.com' } }),
        ],
      }),
    ],
    ops: ['update 200 amanda email', 'create 1000 a2 firstName,email,enabled'],
  },
  // ---- departments
  {
    name: 'missing department created when the mapping allows it',
    sources: [read({ desired: [anna({ createDepartments: true, fields: { firstName: 'Anna', department: 'Support', extraDepartments: ['sales'] } })] })],
    ops: ['create 1000 a1 firstName,department,extraDepartments,enabled'],
    check: (t, p) => t.deepEqual(p.departments, ['Support']),
  },
  {
    name: 'missing department is a conflict when the mapping does not create departments',
    sources: [read({ desired: [anna({ fields: { firstName: 'Anna', department: 'Support' } })] })],
    ops: ['conflict  a1'],
    check: (t, p) => {
      t.regex(reasonOf(p, 'conflict'), /^department Support does not exist and the mapping does not create departments/);
      t.deepEqual(p.departments, []);
    },
  },
  // ---- removals
  {
    name: 'removal policy disable: an identity absent from a complete full read is disabled',
    users: [amanda],
    bindings: [binding('gone', 'u200', '200')],
    sources: [read({ desired: [] })],
    ops: ['disable 200 gone enabled'],
    check: (t, p) => t.regex(reasonOf(p, 'disable'), /absent from a complete read of inbox/),
  },
  {
    name: 'removal policy disable: already disabled by pbxsync, nothing more',
    users: [pbxUser({ enabled: false })],
    bindings: [binding('gone', 'u200', '200', { disabledAt: daysAgo(100) })],
    sources: [read({ desired: [] })],
    ops: [],
  },
  {
    name: 'removal policy delete: disabled first',
    users: [amanda],
    bindings: [binding('gone', 'u200', '200')],
    sources: [read({ removal: { action: 'delete', graceDays: 30 } })],
    ops: ['disable 200 gone enabled'],
  },
  {
    name: 'removal policy delete: within the grace period nothing happens',
    users: [pbxUser({ enabled: false })],
    bindings: [binding('gone', 'u200', '200', { disabledAt: daysAgo(10) })],
    sources: [read({ removal: { action: 'delete', graceDays: 30 } })],
    ops: [],
  },
  {
    name: 'removal policy delete: deleted once the grace period is over',
    users: [pbxUser({ enabled: false })],
    bindings: [binding('gone', 'u200', '200', { disabledAt: daysAgo(31) })],
    sources: [read({ removal: { action: 'delete', graceDays: 30 } })],
    ops: ['delete 200 gone'],
    check: (t, p) => t.regex(reasonOf(p, 'delete'), /disabled 31 days ago, grace period 30 days$/),
  },
  {
    name: 'removal policy keep: nothing',
    users: [amanda],
    bindings: [binding('gone', 'u200', '200')],
    sources: [read({ removal: { action: 'keep', graceDays: 0 } })],
    ops: [],
  },
  {
    name: 'disabled in the source counts as leaving',
    users: [amanda],
    bindings: [binding('a1', 'u200', '200')],
    sources: [read({ desired: [anna({ disabledInSource: true, fields: { firstName: 'Changed' } })] })],
    ops: ['disable 200 a1 enabled'],
    check: (t, p) => t.regex(reasonOf(p, 'disable'), /disabled in inbox/),
  },
  // ---- the mapping's `enabled` rule (a 3CX `Disabled` cell): a PBX field, not leaving
  {
    name: 'mapped enabled false: a bound enabled user is disabled, without starting a grace period',
    users: [amanda],
    bindings: [binding('a1', 'u200', '200')],
    sources: [read({ desired: [amandaRow({ enabled: false })] })],
    ops: ['disable 200 a1 enabled'],
    check: (t, p) => {
      const op = p.operations[0];
      t.deepEqual([op.before, op.after, op.mapped], [{ enabled: true }, { enabled: false }, true]);
      t.is(op.reason, 'marked disabled in inbox (line 2)');
      t.is(p.summary.disable, 1);
    },
  },
  {
    name: 'mapped enabled false with other changes: one disable op carrying them',
    users: [amanda],
    bindings: [binding('a1', 'u200', '200')],
    sources: [read({ desired: [amandaRow({ firstName: 'Noelle', enabled: false })] })],
    ops: ['disable 200 a1 firstName,enabled'],
    check: (t, p) => {
      t.deepEqual(p.operations[0].after, { firstName: 'Noelle', enabled: false });
      t.is(p.operations[0].reason, 'marked disabled in inbox (line 2); first name changed');
    },
  },
  {
    name: 'mapped enabled false: an already disabled user is unchanged',
    users: [pbxUser({ enabled: false })],
    bindings: [binding('a1', 'u200', '200')],
    sources: [read({ desired: [amandaRow({ enabled: false })] })],
    ops: [],
    check: (t, p) => t.is(p.summary.unchanged, 1),
  },
  {
    name: 'mapped enabled true: a user disabled by hand is enabled again',
    users: [pbxUser({ enabled: false })],
    bindings: [binding('a1', 'u200', '200')],
    sources: [read({ desired: [amandaRow({ enabled: true })] })],
    ops: ['enable 200 a1 enabled'],
    check: (t, p) => {
      t.is(p.operations[0].reason, 'marked enabled in inbox (line 2)');
      t.true(p.operations[0].mapped);
    },
  },
  {
    name: 'no enabled rule: a user disabled by hand stays disabled',
    users: [pbxUser({ enabled: false })],
    bindings: [binding('a1', 'u200', '200')],
    sources: [read({ desired: [amandaRow({})] })],
    ops: [],
  },
  {
    name: 'mapped enabled true after the removal policy disabled it: the re-enable of the removal policy',
    users: [pbxUser({ enabled: false })],
    bindings: [binding('a1', 'u200', '200', { disabledAt: daysAgo(3) })],
    sources: [read({ desired: [amandaRow({ enabled: true })] })],
    ops: ['enable 200 a1 enabled'],
    check: (t, p) => {
      t.regex(p.operations[0].reason, /^back in inbox \(line 2\): re-enabled/);
      t.is(p.operations[0].mapped, undefined);
    },
  },
  {
    name: 'mapped enabled false after the removal policy disabled it: stays disabled, nothing to do',
    users: [pbxUser({ enabled: false })],
    bindings: [binding('a1', 'u200', '200', { disabledAt: daysAgo(3) })],
    sources: [read({ desired: [amandaRow({ enabled: false })] })],
    ops: [],
  },
  {
    name: 'mapped enabled false: a new user is created disabled',
    sources: [read({ desired: [anna({ extension: fixed('300'), fields: { firstName: 'Anna', enabled: false } })] })],
    ops: ['create 300 a1 firstName,enabled'],
    check: (t, p) => t.is(p.operations[0].after?.enabled, false),
  },
  {
    name: 'mapped enabled false: an adoption takes the value over with the user',
    users: [amanda],
    sources: [read({ desired: [amandaRow({ enabled: false }, { adopt: ['email'] })] })],
    ops: ['adopt 200 a1 enabled'],
    check: (t, p) => t.deepEqual([p.operations[0].before, p.operations[0].after], [{ enabled: true }, { enabled: false }]),
  },
  {
    name: 'out of scope in a full read counts as leaving',
    users: [amanda],
    bindings: [binding('a1', 'u200', '200')],
    sources: [read({ outOfScope: ['a1'] })],
    ops: ['disable 200 a1 enabled'],
    check: (t, p) => t.regex(reasonOf(p, 'disable'), /out of scope in inbox/),
  },
  {
    name: 'an incomplete read removes nothing (absent, tombstoned, disabled)',
    users: [amanda, pbxUser({ id: 'u201', extension: '201', email: 'b@example.com' }), pbxUser({ id: 'u202', extension: '202', email: 'c@example.com' })],
    bindings: [binding('absent', 'u200', '200'), binding('tomb', 'u201', '201'), binding('off', 'u202', '202')],
    sources: [read({ complete: false, deleted: ['tomb'], desired: [anna({ anchor: 'off', disabledInSource: true, fields: {} })], removal: { action: 'delete', graceDays: 0 } })],
    ops: [],
  },
  {
    name: 'a partial read removes nothing (absent, tombstoned, disabled)',
    users: [amanda, pbxUser({ id: 'u201', extension: '201', email: 'b@example.com' }), pbxUser({ id: 'u202', extension: '202', email: 'c@example.com' })],
    bindings: [binding('absent', 'u200', '200'), binding('tomb', 'u201', '201'), binding('off', 'u202', '202')],
    sources: [read({ mode: 'partial', deleted: ['tomb'], desired: [anna({ anchor: 'off', disabledInSource: true, fields: {} })] })],
    ops: [],
  },
  {
    name: 'delta: tombstones remove, absence does not',
    users: [amanda, pbxUser({ id: 'u201', extension: '201', email: 'b@example.com' })],
    bindings: [binding('tomb', 'u200', '200'), binding('quiet', 'u201', '201')],
    sources: [read({ mode: 'delta', deleted: ['tomb'] })],
    ops: ['disable 200 tomb enabled'],
    check: (t, p) => t.regex(reasonOf(p, 'disable'), /deleted or disabled in inbox/),
  },
  {
    name: 'bindings of a source that was not read are left alone',
    users: [amanda],
    bindings: [binding('x', 'u200', '200', { key: { source: 'other', anchor: 'x' } })],
    sources: [read({ desired: [] })],
    ops: [],
  },
  {
    name: 'an e-mail freed by a delete in the same run can be taken by a create',
    users: [pbxUser({ enabled: false, email: 'anna@example.com' })],
    bindings: [binding('gone', 'u200', '200', { disabledAt: daysAgo(40) })],
    sources: [read({ desired: [anna()], removal: { action: 'delete', graceDays: 30 } })],
    ops: ['delete 200 gone', 'create 1000 a1 firstName,lastName,email,enabled'],
  },
  {
    name: 'summary errors count the record issues of every source',
    sources: [
      read({ issues: [{ source: 'inbox', line: 5, message: 'first name missing' }] }),
      read({ source: 'hr', issues: [{ source: 'hr', message: 'bad DID' }] }),
    ],
    ops: [],
    check: (t, p) => {
      t.is(p.summary.errors, 2);
      t.is(p.issues.length, 2);
    },
  },
  // ---- recognising a record under another anchor (Identity.matchBound: CSV keyColumn auto)
  {
    name: 'matchBound extension: a numbered row is the user bound at its number under its e-mail (the export re-imported): no-op',
    users: [amanda],
    bindings: [binding('amanda@example.com', 'u200', '200')],
    sources: [read({ desired: [amandaRow({}, { anchor: '200', extension: fixed('200'), matchBound: 'extension' })] })],
    ops: [],
    check: (t, p) => {
      t.is(p.summary.unchanged, 1);
      t.is(p.summary.disable, 0, 'a complete full read: the e-mail-anchored binding is present, not leaving');
    },
  },
  {
    name: 'matchBound extension: a new e-mail on that number updates the same user (numbered rows are keyed by number)',
    users: [amanda],
    bindings: [binding('amanda@example.com', 'u200', '200')],
    sources: [read({ desired: [anna({ anchor: '200', extension: fixed('200'), matchBound: 'extension', fields: { firstName: 'Noelle', lastName: 'Melton', email: 'noelle@example.com' } })] })],
    ops: ['update 200 amanda@example.com firstName,lastName,email'],
  },
  {
    name: 'matchBound email: a row without a number is the user its source manages with that e-mail; its extension stays',
    users: [amanda],
    bindings: [binding('200', 'u200', '200')],
    sources: [read({ desired: [amandaRow({ lastName: 'Camden-Lee' }, { anchor: 'amanda@example.com', matchBound: 'email' })] })],
    ops: ['update 200 200 lastName'],
  },
  {
    name: 'matchBound: the binding\'s own record in the same run keeps it; the other record is planned on its own anchor',
    users: [amanda],
    bindings: [binding('200', 'u200', '200')],
    sources: [
      read({
        desired: [
          amandaRow({}, { anchor: 'amanda@example.com', matchBound: 'email', line: 2 }),
          amandaRow({}, { anchor: '200', extension: fixed('200'), matchBound: 'extension', line: 3 }),
        ],
      }),
    ],
    ops: ['conflict  amanda@example.com'],
    check: (t, p) => {
      t.is(p.summary.unchanged, 1);
      t.regex(reasonOf(p, 'conflict'), /e-mail amanda@example\.com is (also wanted|held) by/);
    },
  },
  {
    name: 'matchBound: only bindings of the same source; a user another source manages is a conflict',
    users: [amanda],
    bindings: [binding('200', 'u200', '200', { key: { source: 'hr', anchor: '200' } })],
    sources: [read({ mode: 'partial', desired: [amandaRow({}, { anchor: 'amanda@example.com', matchBound: 'email' })] })],
    ops: ['conflict  amanda@example.com'],
    check: (t, p) => t.regex(reasonOf(p, 'conflict'), /held by user Amanda Camden \(200\) managed for hr\/200/),
  },
  {
    name: 'without matchBound the anchor alone identifies: the same number under another anchor is a conflict',
    users: [amanda],
    bindings: [binding('amanda@example.com', 'u200', '200')],
    sources: [read({ mode: 'partial', desired: [amandaRow({}, { anchor: '200', extension: fixed('200') })] })],
    ops: ['conflict 200 200', 'conflict 200 200'],
  },
  {
    name: 'an allocated create says so in its reason',
    sources: [read({ desired: [anna({ line: 4 })] })],
    ops: ['create 1000 a1 firstName,lastName,email,enabled'],
    check: (t, p) => t.is(reasonOf(p, 'create'), 'new in inbox (line 4); extension allocated from 1000-1999'),
  },
];

for (const row of rows) {
  test(`plan: ${row.name}`, (t) => {
    const p = planOf(row);
    t.deepEqual(p.operations.map(sig), row.ops);
    row.check?.(t, p);
  });
}

function shuffle<T>(list: T[], seed: number): T[] {
  const out = [...list];
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

test('plan: determinism, shuffled inputs give the same plan', (t) => {
  const users = Array.from({ length: 20 }, (_, i) => pbxUser({ id: `u${i}`, extension: String(1000 + i * 2), email: `u${i}@example.com` }));
  const bindings = users.slice(0, 10).map((u, i) => binding(`b${i}`, u.id, u.extension));
  const desiredUsers = [
    ...Array.from({ length: 8 }, (_, i) => desired({ anchor: `b${i}`, fields: { firstName: `B${i}`, email: `u${i}@example.com` } })),
    ...Array.from({ length: 15 }, (_, i) => desired({ anchor: `n${i}`, fields: { firstName: `N${i}`, email: `n${i}@example.com` } })),
    desired({ anchor: 'dup', extension: fixed('1000'), fields: { firstName: 'Dup', email: 'dup@example.com' } }),
  ];
  const base = { users, bindings, departments: ['DEFAULT'] };
  const first = planOf({ ...base, sources: [read({ desired: desiredUsers }), read({ source: 'hr' })] });
  t.true(first.operations.length > 20);
  for (let seed = 1; seed <= 5; seed++) {
    const p = planOf({
      users: shuffle(users, seed),
      bindings: shuffle(bindings, seed + 7),
      departments: ['DEFAULT'],
      sources: shuffle([read({ desired: shuffle(desiredUsers, seed + 3) }), read({ source: 'hr' })], seed),
    });
    t.deepEqual(p, first);
  }
});

test('plan: operations sorted by kind order, then extension', (t) => {
  const p = planOf({
    users: [pbxUser({ id: 'u9', extension: '9000', email: 'x@example.com' }), pbxUser({ id: 'u5', extension: '50', email: 'y@example.com' })],
    bindings: [binding('g1', 'u9', '9000'), binding('g2', 'u5', '50')],
    sources: [read({ desired: [desired({ anchor: 'n2', extension: fixed('1200') }), desired({ anchor: 'n1', extension: fixed('1100'), fields: { firstName: 'B' } })] })],
  });
  t.deepEqual(p.operations.map(sig), [
    'disable 50 g2 enabled',
    'disable 9000 g1 enabled',
    'create 1100 n1 firstName,enabled',
    'create 1200 n2 firstName,lastName,email,enabled',
  ]);
});

test('plan: basis changes with the inputs, not with their order', (t) => {
  const users = [amanda, pbxUser({ id: 'x', extension: '300', email: 'x@example.com' })];
  const a = planOf({ users, sources: [read({ desired: [anna()] })] });
  const b = planOf({ users: [...users].reverse(), sources: [read({ desired: [anna()] })] });
  const c = planOf({ users: [amanda], sources: [read({ desired: [anna()] })] });
  t.regex(a.basis, /^[0-9a-f]{64}$/);
  t.is(a.basis, b.basis);
  t.not(a.basis, c.basis);
});

test('plan: a no-op run plans nothing and echoes the sources without desired users', (t) => {
  const p = planOf({
    users: [amanda],
    bindings: [binding('a1', 'u200', '200')],
    sources: [read({ cursor: 'c1', desired: [anna({ fields: { firstName: 'Amanda' } })] })],
  });
  t.deepEqual(p.operations, []);
  t.is(p.createdAt, '2025-03-01T12:00:00.000Z');
  t.is(p.held, null);
  t.false('desired' in p.sources[0]);
  t.is(p.sources[0].cursor, 'c1');
});
