/** The durable embedding store: see types.ts for the contract and local-store.ts for the disk layout. */
export { createLocalStore, type LocalEmbeddingStore } from './local-store.js';
export { encodeNpyHeader, NpyFormatError, NpyWriter, parseNpyHeader, readNpy, writeNpy, type NpyArray, type NpyDtype, type NpyHeader } from './npy.js';
export { SKIPPED_LIST_MAX } from './schema.js';
export * from './types.js';
export { verifyStore, type StoreCheck, type VerifyOptions } from './verify.js';
