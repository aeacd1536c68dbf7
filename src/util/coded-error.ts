/**
 * The base of every coded error: a stable `code` that callers and tests match on (the message is
 * for people and may change), and `name` set to the subclass's own name for logs and stacks.
 */
export class CodedError<C extends string = string> extends Error {
  constructor(
    readonly code: C,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}
