/**
 * What the OpenAPI and OpenRPC documents say about themselves, and the
 * defaults both the generator and a running server use, so that a server
 * hosting the flagship services serves exactly the checked-in documents.
 */

/** Document metadata; every field has a default. */
export interface DocumentInfo {
  /** `info.title` (default `leasegate`). */
  readonly title?: string;
  /** `info.version` (default the package version, `0.1.0`). */
  readonly version?: string;
  /** `info.description`; each document has its own default. */
  readonly description?: string;
  /** Base URL of the server (default `http://127.0.0.1:8080`). */
  readonly serverUrl?: string;
}

/** Defaults of DocumentInfo shared by both documents. */
export const defaultDocumentInfo = {
  title: 'leasegate',
  version: '0.1.0',
  serverUrl: 'http://127.0.0.1:8080',
} as const;
