// Recognising "the disk is full" wherever it surfaces: a file write (ENOSPC), a quota (EDQUOT),
// or SQLite (SQLITE_FULL, "database or disk is full"), also when wrapped as another error's cause.
// The server answers these with 507 so a client can say what to do, instead of a bare 500.

const OUT_OF_SPACE_CODES = new Set(["ENOSPC", "EDQUOT", "SQLITE_FULL"]);
/** How deep a chain of causes is followed; a cycle or a very long chain stops here. */
const CAUSE_DEPTH_MAX = 8;

export function isOutOfSpaceError(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < CAUSE_DEPTH_MAX && current !== null && typeof current === "object"; depth++) {
    const { code, message, cause, errors } = current as { code?: unknown; message?: unknown; cause?: unknown; errors?: unknown };
    if (typeof code === "string" && OUT_OF_SPACE_CODES.has(code)) return true;
    if (typeof message === "string" && /database or disk is full/i.test(message)) return true;
    if (Array.isArray(errors) && errors.some((inner) => inner !== current && isOutOfSpaceError(inner))) return true;
    current = cause;
  }
  return false;
}
