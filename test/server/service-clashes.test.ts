/**
 * A user's service or schema whose name the built-in services already use is
 * refused at startup (and by the typed client), rather than hiding the
 * built-in one from the served docs and the client.
 */
import { describe, expect, it } from 'vitest';
import { createClient } from '../../client/index.js';
import type { ServiceDefinitions } from '../../common/service-table.js';
import type { ExtraServices } from '../../server/index.js';
import { startTestServer } from '../helpers/server.js';

function userServices(service: string, definitions: Record<string, object>): ExtraServices {
  const table: ServiceDefinitions['services'] = {
    [service]: {
      name: service,
      localName: service[0]?.toLowerCase() + service.slice(1),
      description: 'A user service.',
      methods: {
        Upload: {
          name: 'Upload',
          localName: 'upload',
          request: 'UploadRequest',
          response: 'UploadResponse',
          idempotent: false,
          description: 'Upload.',
        },
      },
    },
  };
  return {
    definitions: {
      services: table,
      schemas: {
        $id: 'user.json',
        definitions: {
          UploadRequest: { type: 'object', properties: { name: { type: 'string' } } },
          UploadResponse: { type: 'object', properties: {} },
          ...definitions,
        },
      },
    },
    implementations: { [service]: { upload: () => ({}) } },
  };
}

describe('names a user shares with the built-in services', () => {
  it('refuses a service named like a built-in one, naming both bundles', async () => {
    await expect(startTestServer({ services: [userServices('Files', {})] })).rejects.toThrow(
      'service Files of user.json clashes with service Files of leasegate.json: rename one',
    );
  });

  it('refuses a different schema under a built-in schema name', async () => {
    const lease = {
      type: 'object',
      description: 'Not the built-in Lease.',
      properties: { who: { type: 'string' } },
    };
    await expect(startTestServer({ services: [userServices('Uploads', { Lease: lease })] })).rejects.toThrow(
      /schema Lease of user\.json clashes with a different schema Lease of leasegate\.json/,
    );
  });

  it('accepts the same schema word for word, and serves the docs of both', async () => {
    const s = await startTestServer({ services: [userServices('Uploads', {})] });
    try {
      const builtin = (
        (await s.send('GET', '/openapi.json')).body as { components: { schemas: Record<string, unknown> } }
      ).components.schemas.Lease;
      await s.close();
      const again = await startTestServer({
        services: [userServices('Uploads', { Lease: builtin as object })],
      });
      const doc = (await again.send('GET', '/openapi.json')).body as { paths: Record<string, unknown> };
      expect(Object.keys(doc.paths)).toEqual(
        expect.arrayContaining(['/v1/Uploads/Upload', '/v1/Files/RemoteOpen', '/v1/Leases/Grant']),
      );
      await again.close();
    } finally {
      await s.close().catch(() => undefined);
    }
  });

  it('refuses two bundles with one $id, saying how to give each its own', async () => {
    await expect(
      startTestServer({ services: [userServices('Uploads', {}), userServices('Downloads', {})] }),
    ).rejects.toThrow('two schema bundles have the $id "user.json": generate each with its own --id');
  });

  it('has the typed client refuse a service named like a built-in one', () => {
    const { services } = userServices('Files', {}).definitions;
    expect(() => createClient({ baseUrl: 'http://127.0.0.1:9', services })).toThrow(
      "service Files is one of leasegate's own services: rename yours",
    );
  });
});

describe('a server of only your own services', () => {
  it('serves and documents them alone with builtinServices: false', async () => {
    const s = await startTestServer({
      builtinServices: false,
      services: [userServices('Uploads', {})],
      docs: { title: 'uploads', version: '2.3.0' },
    });
    try {
      expect((await s.post('Uploads.Upload', { name: 'x' })).status).toBe(200);
      const files = await s.post('Files.RemoteOpen', { path: 'a', mode: 'read' });
      expect([files.status, (files.body as { code: string }).code]).toEqual([404, 'unimplemented']);
      const doc = (await s.send('GET', '/openapi.json')).body as { paths: Record<string, unknown> };
      expect(Object.keys(doc.paths)).toEqual(['/v1/Uploads/Upload', '/jsonrpc']);
      expect((await s.send('GET', '/openrpc.json')).body).toMatchObject({
        info: { title: 'uploads', version: '2.3.0' },
      });
      expect(doc).toMatchObject({ info: { title: 'uploads', version: '2.3.0' } });
    } finally {
      await s.close();
    }
  });

  it('refuses builtinServices: false with nothing else to serve', async () => {
    await expect(startTestServer({ builtinServices: false })).rejects.toThrow(/leaves nothing to serve/);
  });
});
