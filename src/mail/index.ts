export * from './mailer.js';
export * from './welcome.js';
