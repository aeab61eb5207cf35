// Reading request bodies and writing msgpack answers, shared by the client and peer routes.
import type { Context } from "hono";
import { UserError } from "../node/node.ts";
import { LIMITS } from "../core/limits.ts";
import { parseJsonBounded } from "../core/json-shape.ts";
import { BodyTooLargeError, compressIfWorthIt, decompressBody } from "../wire/formats.ts";
import { requireObject } from "./validate.ts";
import { countBodyBytes } from "./metrics.ts";
import { idleCollector } from "./idle-collect.ts";

/** A request body, inflated when it came compressed; at most `maxBytes` as sent and once inflated (413 beyond). */
export async function readBody(c: Context, maxBytes: number = LIMITS.requestBodyBytesMax): Promise<Uint8Array> {
  const tooLarge = () => new BodyTooLargeError(`request body larger than ${maxBytes} bytes`);
  // A declared length past the bound is refused before a byte is read.
  const declared = Number(c.req.header("content-length") ?? NaN);
  if (declared > maxBytes) throw tooLarge();
  const raw = new Uint8Array(await c.req.arrayBuffer());
  countBodyBytes(c, "received", raw.length);
  idleCollector.noteBytes(raw.length);
  if (raw.length > maxBytes) throw tooLarge();
  return decompressBody(raw, c.req.header("content-encoding"), maxBytes);
}

/**
 * A JSON object body, at most LIMITS.jsonBodyBytesMax: every JSON body is a small request, and a
 * body of the general 64 MiB bound would parse into millions of objects (gigabytes of memory).
 */
export async function readJson(c: Context, emptyAllowed = false): Promise<Record<string, unknown>> {
  const bytes = await readBody(c, LIMITS.jsonBodyBytesMax);
  if (emptyAllowed && bytes.length === 0) return {};
  let value: unknown;
  try {
    value = parseJsonBounded(bytes);
  } catch (error) {
    throw new UserError(`the body must be valid JSON (${(error as Error).message})`);
  }
  return requireObject(value);
}

export function msgpackResponse(c: Context, bytes: Uint8Array, allowCompression = false): Response {
  const accepts = (c.req.header("accept-encoding") ?? "").includes("zstd");
  const { body, encoding } = allowCompression && accepts ? compressIfWorthIt(bytes) : { body: bytes, encoding: null };
  const headers: Record<string, string> = { "content-type": "application/msgpack" };
  if (encoding) headers["content-encoding"] = encoding;
  countBodyBytes(c, "sent", body.length);
  idleCollector.noteBytes(body.length);
  return new Response(body as Uint8Array<ArrayBuffer>, { status: 200, headers });
}

