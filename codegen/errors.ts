/**
 * The one error the code generator throws for bad input: it names the file and
 * the field at fault, so a user can fix their schemas without reading our code.
 */
export class CodegenError extends Error {
  override readonly name = 'CodegenError';
  /** The input file at fault (its base name), when there is one. */
  readonly file: string | undefined;
  /** The field at fault, as a dotted path inside the file (`methods.SayHello.request`). */
  readonly field: string | undefined;

  constructor(options: { file?: string; field?: string; message: string; cause?: unknown }) {
    const where = [options.file, options.field]
      .filter((part) => part !== undefined && part !== '')
      .join(': ');
    super(where === '' ? options.message : `${where}: ${options.message}`, { cause: options.cause });
    this.file = options.file;
    this.field = options.field;
  }
}
