// What a node pays to take an upload, by the way its objects come: plain pairs, the whole body
// zstd-compressed (Content-Encoding), or each object as its own zstd frame (upload items of
// kind 1, which the node verifies and keeps as they are instead of compressing them again).
//
//   bun scripts/bench/upload-items.ts [--tree DIR] [--levels 1,3] [--runs N] [--dsync auto|binary|source] [--data DIR]
//
// The objects are the files under --tree (default this repository's node_modules) cut into
// pieces of at most 64 KiB, sent in batches of about 4 MiB, two requests in flight, to a fresh
// node per run. Printed per way: the node's CPU (user + sys, /proc) through the uploads, the
// client-side compression's CPU (this process, before sending), bytes on the wire, and what the
// node's packs hold on disk. Medians over --runs.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { ObjectBatchWriter } from "../../src/client/batch-writer.ts";
import { reframeBatch } from "../../src/client/batch-frames.ts";
import { blake3 } from "../../src/core/blake3.ts";
import type { ObjectId } from "../../src/core/id.ts";
import { commandFlags, formatBytes, formatMarkdownTable, median } from "./lib.ts";
import { REPO_ROOT, resolveDsync, startDsyncNode } from "./push-lib.ts";

const PIECE_BYTES = 64 * 1024;
const BATCH_BYTES = 4 * 1024 * 1024;
const IN_FLIGHT = 2;

interface Options {
  tree: string;
  levels: number[];
  runs: number;
  dsync: "auto" | "binary" | "source";
  dataDir: string;
}

function usage(message?: string): never {
  process.stderr.write(`${message ? `upload-items bench: ${message}\n` : ""}usage: bun scripts/bench/upload-items.ts [--tree DIR] [--levels 1,3] [--runs N] [--dsync auto|binary|source] [--data DIR]\n`);
  process.exit(message ? 2 : 0);
}

function parseOptions(argv: string[]): Options {
  const options: Options = { tree: join(REPO_ROOT, "node_modules"), levels: [1, 3], runs: 3, dsync: "auto", dataDir: "/tmp/dsync-upload-items" };
  for (const { flag, value, count } of commandFlags(argv, usage)) {
    if (flag === "--tree") options.tree = resolve(value());
    else if (flag === "--levels") options.levels = value().split(",").map(Number);
    else if (flag === "--runs") options.runs = count(1);
    else if (flag === "--data") options.dataDir = resolve(value());
    else if (flag === "--dsync") {
      const choice = value();
      if (choice !== "auto" && choice !== "binary" && choice !== "source") usage("--dsync is auto, binary or source");
      options.dsync = choice;
    } else usage(`unknown option ${flag}`);
  }
  return options;
}

function objectsUnder(root: string): { id: ObjectId; bytes: Uint8Array }[] {
  const seen = new Set<string>();
  const out: { id: ObjectId; bytes: Uint8Array }[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile()) {
        const bytes = readFileSync(path);
        for (let at = 0; at < bytes.length || at === 0; at += PIECE_BYTES) {
          const piece = new Uint8Array(bytes.subarray(at, Math.min(bytes.length, at + PIECE_BYTES)));
          const id = blake3(piece);
          const key = Buffer.from(id).toString("hex");
          if (seen.has(key)) continue;
          seen.add(key);
          out.push({ id, bytes: piece });
          if (bytes.length === 0) break;
        }
      }
    }
  };
  walk(root);
  return out;
}

interface Way {
  name: string;
  /** Builds the bodies to send (and their headers), timed as the client's compression. */
  bodies: (batches: Uint8Array[]) => { body: Uint8Array; headers: Record<string, string> }[];
}

function plainBatches(objects: readonly { id: ObjectId; bytes: Uint8Array }[]): Uint8Array[] {
  const batches: Uint8Array[] = [];
  let writer = new ObjectBatchWriter(new Uint8Array(BATCH_BYTES + PIECE_BYTES + 1024));
  for (const o of objects) {
    if (!writer.fits(o.bytes.length) || writer.encodedBytes >= BATCH_BYTES) {
      batches.push(writer.finish().slice());
      writer = new ObjectBatchWriter(new Uint8Array(BATCH_BYTES + PIECE_BYTES + 1024));
    }
    writer.append(o.id, o.bytes);
  }
  if (writer.count > 0) batches.push(writer.finish().slice());
  return batches;
}

async function send(url: string, bodies: { body: Uint8Array; headers: Record<string, string> }[]): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < bodies.length) {
      const { body, headers } = bodies[next++]!;
      const reply = await fetch(`${url}/v1/objects/upload`, { method: "POST", body: body as Uint8Array<ArrayBuffer>, headers: { "content-type": "application/msgpack", ...headers } });
      if (reply.status !== 200) throw new Error(`upload answered ${reply.status}: ${await reply.text()}`);
      await reply.arrayBuffer();
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
}

function packBytesUnder(dir: string): number {
  const packs = join(dir, "objects", "packs");
  return readdirSync(packs).reduce((sum, name) => sum + statSync(join(packs, name)).size, 0);
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const dsync = resolveDsync(options.dsync);
  const objects = objectsUnder(options.tree);
  const rawBytes = objects.reduce((sum, o) => sum + o.bytes.length, 0);
  const batches = plainBatches(objects);
  process.stderr.write(`${dsync.label}; ${objects.length} objects, ${formatBytes(rawBytes)} in ${batches.length} batches from ${options.tree}\n`);
  const ways: Way[] = [{ name: "plain pairs", bodies: (bs) => bs.map((body) => ({ body, headers: {} })) }];
  for (const level of options.levels) {
    ways.push({ name: `whole body zstd ${level}`, bodies: (bs) => bs.map((b) => ({ body: new Uint8Array(Bun.zstdCompressSync(b, { level })), headers: { "content-encoding": "zstd" } })) });
    ways.push({
      name: `kind 1 frames, zstd ${level}`,
      bodies: (bs) =>
        bs.map((b) => ({
          body: reframeBatch(b, (bytes) => (bytes.length < 128 ? null : (Bun.zstdCompressSync(bytes, { level }) as Uint8Array))).body.slice(),
          headers: {},
        })),
    });
  }
  const rows: string[][] = [];
  for (const way of ways) {
    const nodeCpu: number[] = [];
    const clientCpu: number[] = [];
    const seconds: number[] = [];
    let wireBytes = 0;
    let diskBytes = 0;
    for (let run = 0; run < options.runs; run++) {
      const before = process.cpuUsage();
      const bodies = way.bodies(batches);
      const used = process.cpuUsage(before);
      clientCpu.push((used.user + used.system) / 1e6);
      wireBytes = bodies.reduce((sum, b) => sum + b.body.length, 0);
      const dataDir = join(options.dataDir, "node");
      const node = await startDsyncNode(dsync, dataDir);
      try {
        const cpuBefore = node.cpuSeconds();
        const started = performance.now();
        await send(node.url, bodies);
        seconds.push((performance.now() - started) / 1000);
        nodeCpu.push(node.cpuSeconds() - cpuBefore);
        diskBytes = packBytesUnder(dataDir);
      } finally {
        await node.stop();
      }
      process.stderr.write(`${way.name} run ${run + 1}: node CPU ${nodeCpu.at(-1)!.toFixed(2)} s, ${seconds.at(-1)!.toFixed(2)} s\n`);
    }
    rows.push([way.name, median(nodeCpu).toFixed(2), median(clientCpu).toFixed(2), median(seconds).toFixed(2), formatBytes(wireBytes), formatBytes(diskBytes)]);
  }
  process.stdout.write(`\n${objects.length} objects, ${formatBytes(rawBytes)}; ${dsync.label}; medians of ${options.runs}\n\n`);
  process.stdout.write(`${formatMarkdownTable(["way", "node CPU s", "client compression CPU s", "upload s", "on the wire", "node's packs"], rows)}\n`);
}

await main();
