/**
 * Emits `services.ts`: the service tables as data (`as const`) plus the types
 * the server and client derive from them. No behaviour is generated.
 */
import type { MethodModel, ServiceModel } from '../input/service-files.js';
import { isJsonObject, type JsonValue } from '../json.js';
import { definitionNameOf } from '../schema-walk.js';
import { bannerComment, tsDoc, tsKey, tsLiteral, tsString } from './ts-source.js';

/**
 * The top-level fields of each request message that have a `default`: the
 * server fills them in before an implementation runs, so its request type
 * has them as present (see WithDefaults). A request that is a `$ref` is
 * followed; nested defaults are not (their objects may be absent).
 */
export function defaultedFields(definitions: Readonly<Record<string, JsonValue>>): Map<string, string[]> {
  const fields = new Map<string, string[]>();
  for (const [name, schema] of Object.entries(definitions)) {
    let node: JsonValue | undefined = schema;
    for (let hops = 0; isJsonObject(node) && typeof node.$ref === 'string' && hops < 8; hops++) {
      const target = definitionNameOf(node.$ref);
      node = target === undefined ? undefined : definitions[target];
    }
    if (!isJsonObject(node) || !isJsonObject(node.properties)) continue;
    const withDefault = Object.entries(node.properties)
      .filter(([, p]) => isJsonObject(p) && p.default !== undefined)
      .map(([key]) => key);
    if (withDefault.length > 0) fields.set(name, withDefault.sort());
  }
  return fields;
}

/** The source of services.ts for services sorted by name. */
export function emitServicesFile(
  services: readonly ServiceModel[],
  source: string,
  defaulted: ReadonlyMap<string, readonly string[]> = new Map(),
): string {
  const parts = [`${bannerComment(source)}\n`];
  const messages = [
    ...new Set(services.flatMap((s) => Object.values(s.methods).flatMap((m) => [m.request, m.response]))),
  ].sort();
  if (messages.length > 0) {
    parts.push(`import type {\n${messages.map((name) => `  ${name},\n`).join('')}} from './types.js';\n`);
  }
  for (const service of services) parts.push(serviceTable(service));
  parts.push(`/** Every service of this run, by wire name. */
export const services = {
${services.map((s) => `  ${tsKey(s.name)}: ${s.localName}Service,\n`).join('')}} as const;

/** Wire name of a service of this run. */
export type ServiceName = keyof typeof services;
`);
  parts.push(`/** A request as an implementation receives it: the fields with a schema default are always there. */
export type WithDefaults<T, K extends keyof T> = T & { [P in K]-?: Exclude<T[P], undefined> };
`);
  for (const service of services)
    parts.push(implementationInterface(service, defaulted), clientInterface(service));
  parts.push(aggregateTypes(services));
  return parts.join('\n');
}

function methodsOf(service: ServiceModel): MethodModel[] {
  return Object.values(service.methods);
}

function serviceTable(service: ServiceModel): string {
  const table = { ...service } as unknown as Record<string, JsonValue>;
  return `${tsDoc(service.description || `The ${service.name} service.`)}export const ${service.localName}Service = ${tsLiteral(table)} as const;\n`;
}

function implementationInterface(
  service: ServiceModel,
  defaulted: ReadonlyMap<string, readonly string[]>,
): string {
  const members = methodsOf(service).map((m) => {
    const keys = defaulted.get(m.request);
    const request =
      keys === undefined
        ? m.request
        : `WithDefaults<${m.request}, ${keys.map((k) => tsString(k)).join(' | ')}>`;
    return `${tsDoc(m.description, '  ')}  ${m.localName}(request: ${request}, context: Context): Promise<${m.response}> | ${m.response};\n`;
  });
  return `/** What a server implements for ${service.name}: one function per method (\`Context\` is the server's per-call context). */
export interface ${service.name}Implementation<Context = unknown> {
${members.join('')}}
`;
}

function clientInterface(service: ServiceModel): string {
  const members = methodsOf(service).map(
    (m) =>
      `${tsDoc(m.description, '  ')}  ${m.localName}(request: ${m.request}, options?: CallOptions): Promise<${m.response}>;\n`,
  );
  return `/** The typed client of ${service.name} (\`client.${service.localName}\`); \`CallOptions\` are the client's per-call options. */
export interface ${service.name}Client<CallOptions = unknown> {
${members.join('')}}
`;
}

function aggregateTypes(services: readonly ServiceModel[]): string {
  const methodTypes = services.flatMap((s) =>
    methodsOf(s).map(
      (m) => `  ${tsString(`${s.name}.${m.name}`)}: { request: ${m.request}; response: ${m.response} };\n`,
    ),
  );
  return `/** Every service's implementation, keyed by wire service name. */
export interface Implementations<Context = unknown> {
${services.map((s) => `  ${s.name}: ${s.name}Implementation<Context>;\n`).join('')}}

/** Every service's client, keyed by the client property name. */
export interface Clients<CallOptions = unknown> {
${services.map((s) => `  ${s.localName}: ${s.name}Client<CallOptions>;\n`).join('')}}

/** Request and response types of every method, keyed \`Service.Method\` as on the JSON-RPC wire. */
export interface MethodTypes {
${methodTypes.join('')}}

/** \`Service.Method\` name of a method of this run. */
export type MethodName = keyof MethodTypes;
`;
}
