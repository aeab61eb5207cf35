// The upload pipeline's buffers: pooled ones sized for a batch and one more object, one made for
// an object too large for them, and never more buffers at once than requests in flight plus one.
import { expect, test } from "bun:test";
import { blake3 } from "../../src/core/blake3.ts";
import { LIMITS } from "../../src/core/limits.ts";
import { UploadPipeline } from "../../src/client/upload-pipeline.ts";
import { RemoteNode } from "../../src/client/remote.ts";
import { sharedNode } from "../helpers/processes.ts";
import { randomBytes } from "../helpers/trees.ts";

const node = sharedNode();

test("pooled buffers hold a full batch and one node more, not the largest chunk any chunker may cut", () => {
  expect(UploadPipeline.BUFFER_BYTES).toBeGreaterThanOrEqual(LIMITS.batchBytesTarget + LIMITS.structuredObjectBytesMax);
  expect(UploadPipeline.BUFFER_BYTES).toBeLessThan(LIMITS.batchBytesTarget + LIMITS.objectBytesMax);
});

test("at most one buffer per request in flight plus one exists at once, whatever their sizes", async () => {
  const pipeline = new UploadPipeline(new RemoteNode("http://127.0.0.1:9", undefined));
  const held = [];
  for (let i = 0; i < LIMITS.transferConcurrency + 1; i++) held.push(await pipeline.writer(i % 2 === 0 ? 0 : LIMITS.objectBytesMax));
  let granted = false;
  const next = pipeline.writer(LIMITS.objectBytesMax).then((writer) => ((granted = true), writer));
  await Bun.sleep(20);
  expect(granted).toBe(false);
  // A large object's buffer given back makes room for another of any size; a pooled one given
  // back can be traded for a large one.
  pipeline.release(held.pop()!);
  const large = await next;
  expect(large.buffer.length).toBeGreaterThanOrEqual(LIMITS.objectBytesMax);
  let pooledGranted = false;
  const pooled = pipeline.writer(0).then((writer) => ((pooledGranted = true), writer));
  await Bun.sleep(20);
  expect(pooledGranted).toBe(false);
  pipeline.release(held.shift()!);
  expect((await pooled).buffer.length).toBe(UploadPipeline.BUFFER_BYTES);
});

test("an object too large for a pooled buffer goes in a batch of its own, and the node stores it", async () => {
  const remote = new RemoteNode(node().url, undefined);
  const pipeline = new UploadPipeline(remote);
  const big = randomBytes(UploadPipeline.BUFFER_BYTES + 1024, 5);
  const small = randomBytes(1000, 6);
  const writer = await pipeline.writer(small.length);
  writer.append(blake3(small), small);
  expect(writer.fits(big.length)).toBe(false);
  await pipeline.send(writer);
  const alone = await pipeline.writer(big.length);
  expect(alone.fits(big.length)).toBe(true);
  alone.append(blake3(big), big);
  await pipeline.send(alone);
  await pipeline.drain();
  expect(await remote.missing([blake3(small), blake3(big)])).toEqual([]);
});
