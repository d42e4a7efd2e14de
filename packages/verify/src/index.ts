/**
 * @breeze/verify: accept Breeze API keys and JWTs in your own service.
 * Framework guards live in `@breeze/verify/fastify`, `@breeze/verify/express` and `@breeze/verify/fetch`;
 * the webhook check is here and in `@breeze/verify/webhook`.
 */
export {
  BreezeVerifyError,
  type BreezeVerifyErrorCode,
  BreezeWebhookError,
  type BreezeWebhookErrorCode,
} from './errors.js';
export {
  type BreezeErrorBody,
  decide,
  extractCredential,
  type GuardOptions,
  type GuardResult,
  type HeaderGetter,
} from './guard.js';
export { isWellFormedKey } from './key-format.js';
export type {
  BreezeAuth,
  BreezeScope,
  InvalidCode,
  InvalidResult,
  KeyVerifier,
  RateLimitInfo,
  ValidResult,
  VerifyOptions,
  VerifyResult,
} from './types.js';
export {
  createVerifier,
  isValid,
  STREAM_DOWN_TTL_MS,
  type Verifier,
  type VerifierOptions,
} from './verifier.js';
export { type BreezeWebhookEvent, type VerifyWebhookOptions, verifyWebhook } from './webhook.js';
