// A client's image that cannot be used (undecodable, unsupported, too large, wrong placeholder count) is a 400:
// ApiError carries the status, so the server's error mapping answers it without knowing this class.
import { ApiError } from '../../../core/errors.js';

export class ImageInputError extends ApiError {
  constructor(code: string, message: string, param: string | null = null) {
    super(400, code, message, { param });
  }
}
