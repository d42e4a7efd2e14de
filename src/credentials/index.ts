export { ensurePrivateDir, readJsonFile, withDirLock, writeFileAtomicSync } from './atomic-file.js';
export { CREDENTIALS_FILE, FileCredentialStore } from './file-store.js';
export { KEYCHAIN_SERVICE, KeychainCredentialStore } from './keychain-store.js';
export { CredentialManager, type CredentialManagerOptions, type ResolvedCredential } from './manager.js';
export * from './types.js';
