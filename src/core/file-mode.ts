// Which mode bits a tree carries from one copy to another: the permission bits (0o777) alone.
//
// setuid, setgid and sticky are never synced, like Syncthing, and like rsync without --perms.
// A tree comes from another machine, possibly a hostile node: honouring its special bits would
// let it create setuid-root programs (or setuid/setgid directories) in a directory pulled as
// root, without anyone asking. So the scanner records `syncedMode` of what it sees, and a
// write applies `syncedMode` of what the tree says; trees made before (with such bits) still
// decode, their special bits ignored on the way out. A directory keeps the special bits it has
// on disk (a local setgid group directory stays one); a tree never adds any.
export const SYNCED_MODE_BITS = 0o777;

/** The part of a mode a tree records and a write applies. */
export function syncedMode(mode: number): number {
  return mode & SYNCED_MODE_BITS;
}

/** The special bits (setuid, setgid, sticky) of a mode: kept where they are, never synced. */
export function specialModeBits(mode: number): number {
  return mode & 0o7000;
}
