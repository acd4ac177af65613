/**
 * The project's modules as Node's CommonJS loader holds them (`require.cache`, which tsx fills for the `.ts`
 * files), for hot reload: which loaded modules depend on a changed file, dropping exactly those from the cache so
 * the next `require` evaluates them afresh, and putting them back if that fails. Modules outside the reloadable
 * floors (node_modules, the gateway itself under local/) are never dropped: they keep their state.
 */
import { sep } from "node:path";

export interface ReloadableScope {
  /** The project's root directory. */
  readonly root: string;
  /** Directories (absolute) whose modules may be reloaded. */
  readonly dirs: readonly string[];
}

/** Cache entries taken out by {@link dropModules}, to put back with {@link restoreModules}. */
export type CacheSnapshot = ReadonlyMap<string, NodeJS.Module>;

function cache(): NodeJS.Dict<NodeJS.Module> {
  return require.cache;
}

export function isReloadable(scope: ReloadableScope, file: string): boolean {
  return !file.includes(`${sep}node_modules${sep}`) && scope.dirs.some((dir) => file.startsWith(dir + sep));
}

/** Whether `file` is a loaded module of the scope (so editing it changes running code). */
export function isLoaded(scope: ReloadableScope, file: string): boolean {
  return cache()[file] !== undefined && isReloadable(scope, file);
}

/**
 * The loaded reloadable modules that are `changed` or import one of them, directly or not (CommonJS records every
 * `require` edge in `module.children`, cached modules included).
 */
export function dependentsOf(scope: ReloadableScope, changed: readonly string[]): Set<string> {
  const importers = new Map<string, string[]>();
  for (const [file, mod] of Object.entries(cache())) {
    if (!mod || !isReloadable(scope, file)) continue;
    for (const child of mod.children) {
      const list = importers.get(child.filename) ?? [];
      list.push(file);
      importers.set(child.filename, list);
    }
  }
  const found = new Set<string>();
  const queue = changed.filter((file) => isLoaded(scope, file));
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (found.has(file)) continue;
    found.add(file);
    queue.push(...(importers.get(file) ?? []));
  }
  return found;
}

/** Takes `files` out of the cache (so they load afresh); returns what was taken. */
export function dropModules(files: Iterable<string>): CacheSnapshot {
  const taken = new Map<string, NodeJS.Module>();
  const entries = cache();
  for (const file of files) {
    const mod = entries[file];
    if (mod) taken.set(file, mod);
    delete entries[file];
  }
  return taken;
}

/**
 * Undoes a failed reload: every reloadable module loaded since the snapshot is dropped and the snapshot's modules
 * are put back, so the cache is exactly what the running code was loaded from.
 */
export function restoreModules(scope: ReloadableScope, before: ReadonlySet<string>, snapshot: CacheSnapshot): void {
  const entries = cache();
  for (const file of Object.keys(entries)) {
    if (isReloadable(scope, file) && (!before.has(file) || snapshot.has(file))) delete entries[file];
  }
  for (const [file, mod] of snapshot) entries[file] = mod;
}

/** The reloadable modules loaded now. */
export function loadedModules(scope: ReloadableScope): Set<string> {
  return new Set(Object.keys(cache()).filter((file) => isReloadable(scope, file)));
}
