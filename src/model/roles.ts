/**
 * PBX roles, lowest to highest. The identifiers are 3CX V20's `Rights.RoleName` values; the UI names are
 * what admins type in spreadsheets ("System Owner", "Owner", ...), see seeds/000 "Access 'Roles'".
 */
export const ROLE_ORDER = [
  'users',
  'receptionists',
  'group_admins',
  'managers',
  'group_owners',
  'system_admins',
  'system_owners',
] as const;

/** A 3CX role identifier. */
export type RoleName = (typeof ROLE_ORDER)[number];

const UI_NAMES: Record<string, RoleName> = {
  user: 'users',
  receptionist: 'receptionists',
  'group administrator': 'group_admins',
  'group admin': 'group_admins',
  manager: 'managers',
  owner: 'group_owners',
  'group owner': 'group_owners',
  'system administrator': 'system_admins',
  'system admin': 'system_admins',
  'system owner': 'system_owners',
};

/** Rank of a role (0 = users). */
export function roleRank(role: RoleName): number {
  return ROLE_ORDER.indexOf(role);
}

/**
 * Parses a role as written by people and by 3CX exports: the identifier (`system_owners`), the UI name
 * (`System Owner`), or the 3CX CSV cell `<rolename="system_owners"/>` (also with typographic quotes, as the
 * 3CX manual prints it). Returns undefined when the text names no role.
 */
export function parseRole(text: string): RoleName | undefined {
  let t = text.trim().replace(/[\u201c\u201d\u201e\u2033]/g, '"');
  const cell = /<\s*rolename\s*=\s*"+([^"]*)"+\s*\/?>/i.exec(t);
  if (cell) t = cell[1];
  t = t.trim().toLowerCase();
  // The constant, not `t`: every user of a role shares one string.
  const known = (ROLE_ORDER as readonly string[]).indexOf(t);
  if (known >= 0) return ROLE_ORDER[known];
  return UI_NAMES[t.replace(/[_\s]+/g, ' ')] ?? UI_NAMES[t];
}

/** The lower of two roles: how the mapping ceiling (`maxRole`) is enforced. */
export function capRole(role: RoleName, ceiling: RoleName): RoleName {
  return roleRank(role) > roleRank(ceiling) ? ceiling : role;
}
