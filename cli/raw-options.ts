// cac parses options with mri, which turns values that look like numbers into numbers: a folder
// "007" would become 7, a version prefix "12e4" 120000, a token "0001" 1. Options whose values
// are text are therefore read back from the command line exactly as typed.

/** Options whose values are always text. */
export const TEXT_OPTIONS = ["version", "folder", "message", "token", "node-id", "data", "listen", "remote", "role", "name", "expires", "token-file", "cluster-token-file", "metrics-token-file"] as const;

function camelCase(name: string): string {
  return name.replace(/-([a-z])/g, (_, letter: string) => letter.toUpperCase());
}

/** The last value given for `--name` (as `--name value` or `--name=value`), as typed. */
export function rawOptionValue(argv: readonly string[], name: string): string | undefined {
  let value: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const argument = argv[i]!;
    if (argument === "--") break;
    if (argument === `--${name}` && i + 1 < argv.length) value = argv[i + 1];
    else if (argument.startsWith(`--${name}=`)) value = argument.slice(name.length + 3);
  }
  return value;
}

/** Every value given for `--name`, in order, as typed (an option that may be repeated). */
export function rawOptionValues(argv: readonly string[], name: string): string[] {
  const values: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const argument = argv[i]!;
    if (argument === "--") break;
    if (argument === `--${name}` && i + 1 < argv.length) values.push(argv[++i]!);
    else if (argument.startsWith(`--${name}=`)) values.push(argument.slice(name.length + 3));
  }
  return values;
}

/** Replaces parsed text options in `options` with their values as typed. */
export function restoreTextOptions(options: Record<string, unknown>, argv: readonly string[]): void {
  for (const name of TEXT_OPTIONS) {
    const key = camelCase(name);
    if (options[key] === undefined || typeof options[key] === "boolean") continue;
    const raw = rawOptionValue(argv, name);
    if (raw !== undefined) options[key] = raw;
  }
}

/**
 * Switches with three states: `--name`, `--no-name`, or neither (the command decides, e.g. the
 * progress bar on a terminal). cac gives a switch that has a `--no-` form the value true when
 * neither is given, so the state is read back from the command line: the last one given wins.
 */
export const TRISTATE_SWITCHES = ["progress"] as const;

export function restoreTristateSwitches(options: Record<string, unknown>, argv: readonly string[]): void {
  for (const name of TRISTATE_SWITCHES) {
    let value: boolean | undefined;
    for (const argument of argv) {
      if (argument === "--") break;
      if (argument === `--${name}`) value = true;
      else if (argument === `--no-${name}`) value = false;
    }
    if (value === undefined) delete options[camelCase(name)];
    else options[camelCase(name)] = value;
  }
}
