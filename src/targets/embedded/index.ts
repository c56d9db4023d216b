export * from './target.js';
export * from './store.js';
export * from './rules.js';
export * from './credentials.js';
