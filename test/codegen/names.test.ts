import { describe, expect, it } from 'vitest';
import { localNameOf } from '../../codegen/names.js';

describe('localNameOf', () => {
  it.each([
    ['Files', 'files'],
    ['RemoteOpen', 'remoteOpen'],
    ['KeepAlive', 'keepAlive'],
    ['HTTPFiles', 'httpFiles'],
    ['ID', 'id'],
    ['V2Files', 'v2Files'],
    ['A', 'a'],
  ])('turns %s into %s', (name, expected) => {
    expect(localNameOf(name)).toBe(expected);
  });
});
