/**
 * The one error base of the gateway. Every error a caller can see has a stable `code` (documented in
 * README.md), an HTTP `status`, and a message that never carries patient identifiers or upstream bodies.
 * Routes map these to `{ error: { code, message } }` in one place (routes/errors.ts).
 */
export class GatewayError extends Error {
  readonly code: string;
  readonly status: number;
  /** Sent as the answer's Retry-After (whole seconds): when to try again, where someone said. */
  readonly retryAfterSeconds: number | undefined;

  constructor(code: string, status: number, message: string, options?: { cause?: unknown; retryAfterSeconds?: number | undefined }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.status = status;
    this.retryAfterSeconds = options?.retryAfterSeconds;
  }
}

/** The caller sent something malformed (a bad UID, a negative level). */
export class BadRequestError extends GatewayError {
  constructor(message: string, code = 'BAD_REQUEST') {
    super(code, 400, message);
  }
}

/** The thing asked for does not exist (unknown slide, tile outside the grid). */
export class NotFoundError extends GatewayError {
  constructor(message: string, code = 'NOT_FOUND') {
    super(code, 404, message);
  }
}

/** The PACS answered with an error, closed the connection, or sent something we cannot read. */
export class UpstreamError extends GatewayError {
  constructor(message: string, options?: { cause?: unknown; code?: string; retryAfterSeconds?: number | undefined }) {
    super(options?.code ?? 'UPSTREAM_FAILED', 502, message, options);
  }
}

/** The PACS did not answer in time. */
export class UpstreamTimeoutError extends GatewayError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('UPSTREAM_TIMEOUT', 504, message, options);
  }
}

/**
 * The series' metadata lacks what a slide needs or contradicts itself. This is the PACS's data, not the
 * caller's mistake, hence 502 (the same series may work against a correctly configured PACS).
 */
export class InvalidMetadataError extends GatewayError {
  constructor(message: string) {
    super('INVALID_METADATA', 502, message);
  }
}

/** A frame could not be decoded or encoded. */
export class CodecError extends GatewayError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CODEC_FAILED', 502, message, options);
  }
}

/** The caller sent no credentials, or ones the gateway does not accept (GATEWAY_AUTH). */
export class AuthError extends GatewayError {
  constructor(message = 'Sign in: send Authorization: Bearer <token>, or POST /api/session {"token"} for a session cookie') {
    super('AUTH_REQUIRED', 401, message);
  }
}

/** The gateway is shutting down. */
export class ClosingError extends GatewayError {
  constructor() {
    super('CLOSING', 503, 'The gateway is shutting down');
  }
}

export function isGatewayError(error: unknown): error is GatewayError {
  return error instanceof GatewayError;
}
