/**
 * How a vendor call failed, decided once where the answer is parsed:
 *  - retry: worth trying again later (network, 5xx, spike arrest, subscriber locked);
 *  - permanent: the request itself is wrong or refused; retrying cannot help;
 *  - invalid_token: Daraja rejected our OAuth token; refresh it once and try again at once.
 */
export type VendorFailureKind = 'retry' | 'permanent' | 'invalid_token';

export class VendorError extends Error {
  constructor(
    readonly vendor: 'daraja' | 'africastalking',
    readonly kind: VendorFailureKind,
    readonly code: string,
    message: string,
    readonly httpStatus?: number,
    /**
     * The request may have reached the vendor and been acted on although we saw no answer (a timeout
     * or a connection reset after sending). Sending it again could do it twice: for a call without an
     * idempotency key (STK Push) that decides between "retry" and "wait for the callback".
     */
    readonly maybeProcessed = false,
  ) {
    super(`${vendor} ${code}: ${message}`);
    this.name = 'VendorError';
  }
}
