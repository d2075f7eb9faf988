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
  ) {
    super(`${vendor} ${code}: ${message}`);
    this.name = 'VendorError';
  }
}
