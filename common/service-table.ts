/**
 * The runtime shape of the generated service tables (generated/services.ts).
 * Generated code is data; the server and the client walk these tables.
 */

/** One method of a service, as the IDL declares it. */
export interface MethodDescriptor {
  /** Wire name, PascalCase (`RemoteOpen`). */
  readonly name: string;
  /** TypeScript name, camelCase (`remoteOpen`). */
  readonly localName: string;
  /** Name of the request message in the schema bundle's definitions. */
  readonly request: string;
  /** Name of the response message in the schema bundle's definitions. */
  readonly response: string;
  /** Whether a retry without an idempotency key is safe. */
  readonly idempotent: boolean;
  /** What the method does (becomes the docs). */
  readonly description: string;
}

/** One service: its wire name, client property name and methods by wire name. */
export interface ServiceDescriptor {
  /** Wire name, PascalCase (`Files`). */
  readonly name: string;
  /** TypeScript name, camelCase (`files`). */
  readonly localName: string;
  readonly description: string;
  readonly methods: { readonly [method: string]: MethodDescriptor };
}

/** All services of one generator run, by wire name. */
export interface ServiceTable {
  readonly [service: string]: ServiceDescriptor;
}

/** The JSON Schema bundle of one generator run: every message under `definitions`, refs `#/definitions/X`. */
/**
 * Members of the typed client object besides its services (`client.close()`,
 * `client.on(...)`, ...; `then` would make the client look like a promise to
 * `await`): no service may take one of these as its TypeScript name.
 */
export const clientMemberNames: readonly string[] = ['close', 'on', 'off', 'leaseIds', 'then'];

export interface SchemaBundle {
  readonly $id: string;
  readonly definitions: { readonly [name: string]: object };
}

/** What a generator run yields at runtime: the tables plus the schemas they name. */
export interface ServiceDefinitions {
  readonly services: ServiceTable;
  readonly schemas: SchemaBundle;
}
