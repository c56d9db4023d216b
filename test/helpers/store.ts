import { silentLogger } from '../../src/log.js';
import { EmbeddedStore, type StoredUser } from '../../src/targets/embedded/store.js';

/**
 * The users an embedded store file holds, credentials included, in extension order: the document and its
 * journal read together (read-only, so a running owner is not disturbed), as the store itself loads them.
 */
export async function storedUsers(file: string): Promise<StoredUser[]> {
  const store = await EmbeddedStore.open(file, { logger: silentLogger(), readOnly: true });
  try {
    return store.idsInExtensionOrder().map((id) => store.getById(id)!);
  } finally {
    await store.close();
  }
}
