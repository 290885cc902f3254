/**
 * Naming rules shared by the loader and the emitters: IDL names are PascalCase
 * on the wire, camelCase in TypeScript (`Files.RemoteOpen` → `files.remoteOpen`).
 */

/** What an IDL name (definition, service or method) must look like: PascalCase ASCII. */
export const pascalCaseName = /^[A-Z][A-Za-z0-9]*$/;

/**
 * The camelCase TypeScript name of a PascalCase IDL name. A leading acronym is
 * lower-cased as a whole (`HTTPFiles` → `httpFiles`, `ID` → `id`).
 */
export function localNameOf(name: string): string {
  const acronym = /^[A-Z]+(?=[A-Z][a-z]|[0-9]|$)/.exec(name)?.[0];
  if (acronym !== undefined && acronym.length > 1) {
    return acronym.toLowerCase() + name.slice(acronym.length);
  }
  return name.charAt(0).toLowerCase() + name.slice(1);
}

/** Names of the TypeScript declarations services.ts emits for one service. */
export function serviceTypeNames(service: string): readonly string[] {
  return [`${service}Implementation`, `${service}Client`];
}

/**
 * Type names services.ts always emits, plus globals it uses; a definition with
 * one of these names would clash in the barrel or shadow the global.
 */
export const reservedTypeNames: ReadonlySet<string> = new Set([
  'Implementations',
  'Clients',
  'MethodTypes',
  'ServiceName',
  'MethodName',
  'Promise',
]);
