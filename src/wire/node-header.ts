// The header a dsync node sets on every answer, with its node id: what tells a client that the
// server at an address is a dsync node (an error from a plain web server or another service has
// none), so a wrong --remote is said in one line instead of as an odd failure.
export const NODE_ID_HEADER = "x-dsync-node";
