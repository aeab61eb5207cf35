// Reading request bodies and writing msgpack answers, shared by the client and peer routes.
import type { Context } from "hono";
import { UserError } from "../node/node.ts";
import { compressIfWorthIt, decompressBody } from "./wire.ts";
import { requireObject } from "./validate.ts";
import { countBodyBytes } from "./metrics.ts";

export async function readBody(c: Context): Promise<Uint8Array> {
  const raw = new Uint8Array(await c.req.arrayBuffer());
  countBodyBytes(c, "received", raw.length);
  return decompressBody(raw, c.req.header("content-encoding"));
}

export async function readJson(c: Context, emptyAllowed = false): Promise<Record<string, unknown>> {
  const bytes = await readBody(c);
  if (emptyAllowed && bytes.length === 0) return {};
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new UserError("the body must be valid JSON");
  }
  return requireObject(value);
}

export function msgpackResponse(c: Context, bytes: Uint8Array, allowCompression = false): Response {
  const accepts = (c.req.header("accept-encoding") ?? "").includes("zstd");
  const { body, encoding } = allowCompression && accepts ? compressIfWorthIt(bytes) : { body: bytes, encoding: null };
  const headers: Record<string, string> = { "content-type": "application/msgpack" };
  if (encoding) headers["content-encoding"] = encoding;
  countBodyBytes(c, "sent", body.length);
  return new Response(body as Uint8Array<ArrayBuffer>, { status: 200, headers });
}

