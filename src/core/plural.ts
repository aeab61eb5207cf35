// Counts in words: "1 file", "2 files", "0 files". Every count the CLI prints goes through here,
// so none reads "1 files".

/** `n` and the noun, singular for exactly 1; `plural` when adding "s" is wrong ("1 directory", "2 directories"). */
export function counted(n: number, singular: string, plural = `${singular}s`): string {
  return `${n} ${n === 1 ? singular : plural}`;
}
