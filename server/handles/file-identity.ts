/**
 * What names one file across renames and the reuse of its path: device,
 * inode and birth time. An inode number alone may be handed out again once
 * the file is removed; the birth time (ms, 0 when the file system keeps none)
 * tells the new file from the old one.
 */
export interface FileIdentity {
  readonly dev: number;
  readonly ino: number;
  readonly birth: number;
}

/** Whether `st` (an fstat of an open descriptor) is the file `id` names. */
export function isSameFile(
  st: { readonly dev: number; readonly ino: number; readonly birthtimeMs: number },
  id: FileIdentity,
): boolean {
  return st.dev === id.dev && st.ino === id.ino && (id.birth === 0 || st.birthtimeMs === id.birth);
}

/** The identity as one string (`dev:ino:birth`), to key maps by file. */
export function fileKey(id: FileIdentity): string {
  return `${id.dev}:${id.ino}:${id.birth}`;
}
