// The metadata store cannot be reached right now (its database server is down, restarting,
// out of connections, or did not answer in time). Unlike MetadataDamagedError this is
// expected to pass: the node keeps running, answers 503 for what needs its metadata, and
// carries on once the store answers again, with nothing to repair.
//
// A change whose call rejected with this error may or may not have been made: a connection
// that breaks while COMMIT travels leaves the outcome unknown to the client. Every change a
// node makes can be made again safely (a commit is a compare-and-set; recording a version twice
// records it once), so the client's retry settles it.
export class MetadataUnavailableError extends Error {
  override name = "MetadataUnavailableError";
  constructor(
    /** Where the store is, for people (a URL without its password). */
    readonly location: string,
    /** Why, in words: the driver's or the server's reason. */
    readonly reason: string,
  ) {
    super(`metadata store unavailable: ${location}: ${reason}`);
  }
}
