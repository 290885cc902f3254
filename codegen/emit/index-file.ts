/** Emits `index.ts`: the barrel of one generator run. */
import { bannerComment } from './ts-source.js';

/** The source of index.ts. */
export function emitIndexFile(source: string): string {
  return `${bannerComment(source)}

export * from './schemas.js';
export * from './services.js';
export * from './types.js';
`;
}
