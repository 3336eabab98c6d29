/** Machine-readable kind of a {@link DiffusionError}. */
export type DiffusionErrorCode =
  | 'unknown-category'
  | 'bad-model'
  | 'model-integrity'
  | 'bad-option'
  | 'backend'
  | 'webgpu-unavailable'
  | 'cache'
  | 'worker'
  | 'queue-full'
  | 'aborted';

/**
 * The one error type spritediffusion throws. `code` says what went wrong; `message` names the
 * problem and what to do about it.
 */
export class DiffusionError extends Error {
  /** What kind of failure this is. */
  readonly code: DiffusionErrorCode;

  /**
   * @param code - the failure kind
   * @param message - a human-readable description that names the problem and the fix
   * @param options - `cause`: the underlying error, if any
   */
  constructor(code: DiffusionErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DiffusionError';
    this.code = code;
  }
}
