export * from './roles.js';
export * from './user.js';
export * from './identity.js';
