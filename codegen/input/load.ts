/**
 * Loads a schemas folder into the runtime shape of a generator run
 * (`ServiceDefinitions`): one schema bundle holding every definition plus the
 * built-in ErrorBody, and the service table, services sorted by name.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { clientMemberNames } from '../../common/service-table.js';
import { errorBodyName, errorBodySchema } from '../error-body.js';
import { CodegenError } from '../errors.js';
import type { JsonObject } from '../json.js';
import { serviceTypeNames } from '../names.js';
import { readJsonFile } from './read-json.js';
import { checkCompiles, checkKeywords, checkReferences, mergeSchemaFiles } from './schema-files.js';
import { parseServiceFile, type ServiceModel } from './service-files.js';

/** Suffix of the files holding messages. */
export const schemaFileSuffix = '.schema.json';
/** Suffix of the files declaring services. */
export const serviceFileSuffix = '.service.json';

/** What one schemas folder yields: the shape of common/service-table.ts's ServiceDefinitions, mutable. */
export interface LoadedDefinitions {
  services: Record<string, ServiceModel>;
  schemas: { $id: string; definitions: Record<string, JsonObject> };
}

/** Reads, checks and bundles every `*.schema.json` and `*.service.json` file of `schemasDir`. */
export async function loadDefinitions(
  schemasDir: string,
  options: { id: string },
): Promise<LoadedDefinitions> {
  let names: string[];
  try {
    names = (await readdir(schemasDir)).sort();
  } catch (cause) {
    throw new CodegenError({
      message: `cannot read the schemas folder ${schemasDir}: ${(cause as Error).message}`,
      cause,
    });
  }
  const schemaFiles = names.filter((name) => name.endsWith(schemaFileSuffix));
  const serviceFiles = names.filter((name) => name.endsWith(serviceFileSuffix));
  if (schemaFiles.length === 0 && serviceFiles.length === 0) {
    throw new CodegenError({
      message: `the schemas folder ${schemasDir} holds no *${schemaFileSuffix} or *${serviceFileSuffix} file`,
    });
  }

  const parsed = await Promise.all(
    schemaFiles.map(async (file) => [file, await readJsonFile(join(schemasDir, file))] as const),
  );
  const merged = mergeSchemaFiles(parsed);
  checkReferences(merged);
  checkKeywords(options.id, merged); // first: compiling would warn about an unknown format
  checkCompiles(options.id, merged);
  const definitions: Record<string, JsonObject> = {
    ...merged.definitions,
    [errorBodyName]: errorBodySchema(),
  };

  const services: ServiceModel[] = [];
  const fileOfService = new Map<string, string>();
  for (const file of serviceFiles) {
    const service = parseServiceFile(file, await readJsonFile(join(schemasDir, file)), definitions);
    const first = fileOfService.get(service.name);
    if (first !== undefined) {
      throw new CodegenError({
        file,
        field: 'service',
        message: `"${service.name}" is also declared in ${first}`,
      });
    }
    for (const typeName of serviceTypeNames(service.name)) {
      if (Object.hasOwn(definitions, typeName)) {
        throw new CodegenError({
          file,
          field: 'service',
          message: `"${service.name}" needs the type name ${typeName}, which ${merged.fileOf.get(typeName)} already defines`,
        });
      }
    }
    if (clientMemberNames.includes(service.localName)) {
      throw new CodegenError({
        file,
        field: 'service',
        message: `"${service.name}" would be client.${service.localName}, which the typed client uses itself (${clientMemberNames.join(', ')}): rename it`,
      });
    }
    const sameLocalName = services.find((other) => other.localName === service.localName);
    if (sameLocalName !== undefined) {
      throw new CodegenError({
        file,
        field: 'service',
        message: `"${service.name}" has the same TypeScript name (${service.localName}) as service ${sameLocalName.name}`,
      });
    }
    fileOfService.set(service.name, file);
    services.push(service);
  }
  services.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

  return {
    services: Object.fromEntries(services.map((service) => [service.name, service])),
    schemas: { $id: options.id, definitions },
  };
}
