import { describe, expect, it } from 'vitest';
import { createAjv } from '../../common/ajv.js';
import { closeObjects } from '../../common/close-objects.js';
import type { SchemaBundle } from '../../common/service-table.js';
import { validationError } from '../../server/rpc/validation.js';

/** A user's bundle with what Ajv's removeAdditional "all" broke: oneOf, allOf, maps, free-form objects. */
const notes: SchemaBundle = {
  $id: 'notes.json',
  definitions: {
    Timestamps: {
      type: 'object',
      properties: { createdAt: { type: 'string', format: 'date-time' } },
      required: ['createdAt'],
    },
    Plain: { type: 'object', properties: { kind: { const: 'plain' } }, required: ['kind'] },
    Highlight: {
      type: 'object',
      properties: { kind: { const: 'highlight' }, color: { enum: ['yellow', 'pink'] } },
      required: ['kind', 'color'],
    },
    Author: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] },
    AddNoteRequest: {
      type: 'object',
      properties: {
        title: { type: 'string' },
        author: { $ref: '#/definitions/Author' },
        style: { oneOf: [{ $ref: '#/definitions/Plain' }, { $ref: '#/definitions/Highlight' }] },
        shape: {
          oneOf: [
            {
              type: 'object',
              properties: { kind: { const: 'rect' }, w: { type: 'number' }, h: { type: 'number' } },
              required: ['kind'],
            },
            {
              type: 'object',
              properties: { kind: { const: 'circle' }, r: { type: 'number' } },
              required: ['kind'],
            },
          ],
        },
        checklist: {
          allOf: [
            { $ref: '#/definitions/Timestamps' },
            {
              type: 'object',
              properties: { items: { type: 'array', items: { type: 'string' } } },
              required: ['items'],
            },
          ],
        },
        labels: { type: 'object', additionalProperties: { type: 'string' } },
        attachments: {
          type: 'array',
          items: {
            oneOf: [
              {
                type: 'object',
                properties: { kind: { const: 'link' }, url: { type: 'string' } },
                required: ['kind', 'url'],
              },
              {
                type: 'object',
                properties: {
                  kind: { const: 'file' },
                  fileName: { type: 'string' },
                  sizeBytes: { type: 'integer', minimum: 0 },
                },
                required: ['kind', 'fileName'],
              },
            ],
          },
        },
        extra: { type: 'object', properties: { known: { type: 'string' } }, additionalProperties: true },
      },
      required: ['title'],
    },
  },
};

function validator() {
  const ajv = createAjv([notes]);
  const validate = ajv.compile({ $ref: 'notes.json#/definitions/AddNoteRequest' });
  return (body: unknown) => {
    const ok = validate(body);
    return { ok, body, errors: validate.errors };
  };
}

describe('request validation with compositions and maps', () => {
  const check = validator();

  it('accepts a valid oneOf branch and keeps its fields', () => {
    const r = check({ title: 't', style: { kind: 'highlight', color: 'pink' } });
    expect(r.ok).toBe(true);
    expect(r.body).toEqual({ title: 't', style: { kind: 'highlight', color: 'pink' } });
    const shape = check({ title: 't', shape: { kind: 'rect', w: 1, h: 2 } });
    expect(shape.body).toEqual({ title: 't', shape: { kind: 'rect', w: 1, h: 2 } });
  });

  it('accepts an allOf object with the fields of every part', () => {
    const r = check({ title: 't', checklist: { createdAt: '2024-01-01T00:00:00Z', items: ['a', 'b'] } });
    expect(r.ok).toBe(true);
    expect(r.body).toEqual({
      title: 't',
      checklist: { createdAt: '2024-01-01T00:00:00Z', items: ['a', 'b'] },
    });
    expect(check({ title: 't', checklist: { items: ['a'] } }).ok).toBe(false);
  });

  it('keeps and validates the entries of a map and of a free-form object', () => {
    const r = check({ title: 't', labels: { project: 'x', color: 'red' }, extra: { known: 'k', other: 1 } });
    expect(r.ok).toBe(true);
    expect(r.body).toEqual({
      title: 't',
      labels: { project: 'x', color: 'red' },
      extra: { known: 'k', other: 1 },
    });
    const bad = check({ title: 't', labels: { project: 42 } });
    expect(bad.ok).toBe(false);
    expect(bad.errors?.[0]?.instancePath).toBe('/labels/project');
  });

  it('still drops unknown fields of plain objects, at the top and nested', () => {
    const r = check({ title: 't', recursve: true, author: { name: 'Ada', nick: 'a' } });
    expect(r.ok).toBe(true);
    expect(r.body).toEqual({ title: 't', author: { name: 'Ada' } });
  });

  it('refuses an object that matches no branch', () => {
    expect(check({ title: 't', style: { kind: 'highlight' } }).ok).toBe(false);
    expect(check({ title: 't', style: { kind: 'bold' } }).ok).toBe(false);
  });

  it('closes only the validator copy: the bundle the docs show is left as written', () => {
    const before = JSON.stringify(notes);
    const [copy] = closeObjects([notes]);
    expect(JSON.stringify(notes)).toBe(before);
    const defs = copy?.definitions as Record<string, Record<string, unknown>>;
    expect(defs.AddNoteRequest?.additionalProperties).toBe(false);
    expect(defs.Author?.additionalProperties).toBe(false);
    // Reached from a composition: left open, so that a branch that does not match deletes nothing.
    expect(defs.Plain?.additionalProperties).toBeUndefined();
    expect(defs.Highlight?.additionalProperties).toBeUndefined();
    expect(defs.Timestamps?.additionalProperties).toBeUndefined();
  });

  it("names the field of the branch the value was meant for, not the first branch's", () => {
    const r = check({ title: 't', attachments: [{ kind: 'file', fileName: 'a', sizeBytes: -1 }] });
    expect(r.ok).toBe(false);
    const error = validationError(r.errors);
    expect(error.details).toMatchObject({ reason: 'invalid_field', field: 'attachments.0.sizeBytes' });
    expect(error.message).toBe('attachments.0.sizeBytes: must be >= 0');
  });

  it('says which value a const wanted', () => {
    const error = validationError(check({ title: 't', style: { kind: 'bold' } }).errors);
    expect(error.message).toBe('style.kind: must be equal to constant ("plain")');
  });
});
