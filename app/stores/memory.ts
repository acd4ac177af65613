/** The in-memory store's factory, registered on import: local runs and tests only, never a Lambda bundle. */
import { MemoryConnectionStore } from "../../stores/memory";
import { registerStore } from "../store-registry";

/** One per process: the local gateway runs every handler in one process, and they must see the same connections. */
let memoryStore: MemoryConnectionStore | undefined;

registerStore("memory", { create: () => (memoryStore ??= new MemoryConnectionStore()) });
