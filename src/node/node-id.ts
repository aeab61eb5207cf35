// A node's id names its writes in version vectors and conflict copies, and ends up in file
// names and in every node's history, so it is kept to a short, plain alphabet.

/** Why a node id is unusable, or undefined. */
export function nodeIdProblem(id: string): string | undefined {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(id)) return `a node id is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit (got ${JSON.stringify(id)})`;
  return undefined;
}
