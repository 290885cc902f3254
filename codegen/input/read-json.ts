/** Reads the JSON input files of a schemas folder, turning every failure into a CodegenError naming the file. */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import type { ErrorObject } from 'ajv';
import { CodegenError } from '../errors.js';
import { fieldOf, type JsonValue, pointerTo } from '../json.js';

/** Reads and parses one JSON file. */
export async function readJsonFile(path: string): Promise<JsonValue> {
  const file = basename(path);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    throw new CodegenError({ file, message: `cannot be read (${(cause as Error).message})`, cause });
  }
  try {
    return JSON.parse(text) as JsonValue;
  } catch (cause) {
    throw new CodegenError({ file, message: `is not valid JSON (${(cause as Error).message})`, cause });
  }
}

/**
 * Turns the first of ajv's errors into a CodegenError naming the field at
 * fault (ajv reports the parent object for missing and unexpected keys).
 */
export function ajvError(
  file: string,
  errors: readonly ErrorObject[] | null | undefined,
  prefix = '',
): CodegenError {
  const error = errors?.find((e) => e.propertyName === undefined) ?? errors?.[0];
  if (error === undefined) return new CodegenError({ file, message: 'is invalid' });
  const params = error.params as Record<string, unknown>;
  let pointer = prefix + error.instancePath;
  let message = error.message ?? 'is invalid';
  if (error.keyword === 'required' && typeof params.missingProperty === 'string') {
    pointer = pointerTo(pointer, params.missingProperty);
    message = 'is required';
  } else if (error.keyword === 'additionalProperties' && typeof params.additionalProperty === 'string') {
    pointer = pointerTo(pointer, params.additionalProperty);
    message = 'is not allowed here';
  } else if (error.keyword === 'propertyNames' && typeof params.propertyName === 'string') {
    pointer = pointerTo(pointer, params.propertyName);
    message = 'must be a PascalCase name (ASCII letters and digits, starting with an upper-case letter)';
  } else if (error.keyword === 'enum' && Array.isArray(params.allowedValues)) {
    message = `must be one of ${params.allowedValues.map((value) => JSON.stringify(value)).join(', ')}`;
  } else if (error.keyword === 'pattern' && error.schemaPath.includes('pascalCase')) {
    message = 'must be a PascalCase name (ASCII letters and digits, starting with an upper-case letter)';
  }
  return new CodegenError({ file, field: fieldOf(pointer) || undefined, message });
}
