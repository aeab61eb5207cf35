// A request the node refuses for what it asks (not for a fault of the node): the HTTP layer
// answers it with its status and message as they are.
export class UserError extends Error {
  override name = "UserError";
  constructor(message: string, readonly status: 400 | 404 | 409 | 422 = 400) {
    super(message);
  }
}
