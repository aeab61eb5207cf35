// "Which of these do you lack?" against a real node: asked for bits, it answers one per id asked
// (`{"lacking": bin}`); asked as before, with the ids (`{"missing": [...]}`). The client asks for
// bits and reads either answer, so it works with a node from before the bits as with this one.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { blake3 } from "../../src/core/blake3.ts";
import { decodeMsgpack, encodeCanonical } from "../../src/core/encoding.ts";
import { idToHex, type ObjectId } from "../../src/core/id.ts";
import { RemoteNode } from "../../src/client/remote.ts";
import { decodeIdList, encodeIdList, encodeObjectBatch } from "../../src/wire/formats.ts";
import { LACKING_BITS_REPLY } from "../../src/wire/id-list.ts";
import { NODE_ID_HEADER } from "../../src/wire/node-header.ts";
import { sharedNode } from "../helpers/processes.ts";

const TOKEN = "missing-reply-token";
const node = sharedNode({ args: ["--token", TOKEN] });
const auth = { authorization: `Bearer ${TOKEN}`, "content-type": "application/msgpack" };
const bin = (bytes: Uint8Array) => bytes as unknown as BodyInit;

/** 21 objects; the node gets those at 0, 7, 8 and 20 (either side of a byte's edge). */
const objects = Array.from({ length: 21 }, (_, i) => new TextEncoder().encode(`object ${i} of the missing-reply test`));
const asked: ObjectId[] = objects.map((bytes) => blake3(bytes));
const storedAt = new Set([0, 7, 8, 20]);
const lackingHex = asked.filter((_, i) => !storedAt.has(i)).map(idToHex);

beforeAll(async () => {
  const batch = encodeObjectBatch([...storedAt].map((i) => ({ id: asked[i]!, bytes: objects[i]! })));
  const stored = await fetch(`${node().url}/v1/objects/upload`, { method: "POST", body: bin(batch), headers: auth });
  if (stored.status !== 200) throw new Error(`upload failed: ${stored.status} ${await stored.text()}`);
});

describe("the node's answer", () => {
  test("asked for bits: one bit per id asked, set for the ids it lacks", async () => {
    const reply = await fetch(`${node().url}/v1/objects/missing`, { method: "POST", body: bin(encodeIdList(asked, LACKING_BITS_REPLY)), headers: auth });
    expect(reply.status).toBe(200);
    const value = decodeMsgpack(new Uint8Array(await reply.arrayBuffer())) as Map<string, unknown>;
    expect([...value.keys()]).toEqual(["lacking"]);
    const bits = value.get("lacking") as Uint8Array;
    // 21 ids: 3 bytes, bits 0, 7, 8 and 20 clear (stored), the rest of the first 21 set, none past them.
    expect([...bits]).toEqual([0b0111_1110, 0b1111_1110, 0b0000_1111]);
  });

  test("asked as before: the ids it lacks, in the order asked", async () => {
    const reply = await fetch(`${node().url}/v1/objects/missing`, { method: "POST", body: bin(encodeIdList(asked)), headers: auth });
    expect(reply.status).toBe(200);
    expect(decodeIdList(new Uint8Array(await reply.arrayBuffer()), "missing").map(idToHex)).toEqual(lackingHex);
  });

  test("a reply format it does not know is refused as a bad request", async () => {
    const reply = await fetch(`${node().url}/v1/objects/missing`, { method: "POST", body: bin(encodeCanonical({ ids: asked, reply: 12 })), headers: auth });
    expect(reply.status).toBe(400);
  });
});

describe("the client", () => {
  test("reads the bits: the ids lacking, in order, in a reply of a few bytes", async () => {
    const remote = new RemoteNode(node().url, TOKEN);
    expect((await remote.missing(asked)).map(idToHex)).toEqual(lackingHex);
    // The id list would be 64 + 34 per id lacking; the bits are 3 bytes and their framing.
    expect(remote.counters.wireBytesReceived).toBeLessThan(64);
  });

  let oldNode: ReturnType<typeof Bun.serve> | undefined;
  beforeAll(() => {
    // A node from before the bits: it reads the ids, ignores the reply asked for, and names the
    // ids it lacks (those the real node lacks, asked of it the old way).
    oldNode = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      async fetch(request) {
        const body = new Uint8Array(await request.arrayBuffer());
        const ids = decodeIdList(body);
        const real = await fetch(`${node().url}/v1/objects/missing`, { method: "POST", body: bin(encodeIdList(ids)), headers: auth });
        return new Response(bin(new Uint8Array(await real.arrayBuffer())), { headers: { "content-type": "application/msgpack", [NODE_ID_HEADER]: "0123456789abcdef" } });
      },
    });
  });
  afterAll(() => oldNode?.stop(true));

  test("reads the ids from a node that answers without the bits", async () => {
    const remote = new RemoteNode(`http://127.0.0.1:${oldNode!.port}`, TOKEN);
    expect((await remote.missing(asked)).map(idToHex)).toEqual(lackingHex);
  });
});
