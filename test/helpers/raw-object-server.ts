// A fake node for client tests: serves one folder whose single version has whatever root and
// objects it is given, raw (no checks of its own), the way a hostile or broken node could.
import { blake3 } from "../../src/core/blake3.ts";
import { idToHex, type ObjectId } from "../../src/core/id.ts";
import { encodeObject, type StructuredObject } from "../../src/core/objects.ts";
import { decodeIdList, encodeDownloadReply } from "../../src/wire/formats.ts";

export class RawObjects {
  readonly byHex = new Map<string, Uint8Array>();
  /** Stores raw bytes (a chunk, or an encoded object) and returns their id. */
  addBytes(bytes: Uint8Array): ObjectId {
    const id = blake3(bytes);
    this.byHex.set(idToHex(id), bytes);
    return id;
  }
  add(object: StructuredObject): ObjectId {
    return this.addBytes(encodeObject(object));
  }
}

export interface RawServerOptions {
  /** Called with the ids of each download request before it is answered (to act mid-pull). */
  beforeDownload?: (ids: ObjectId[]) => void | Promise<void>;
}

/**
 * Serves folder `folder` with one version whose tree is `root`; setHead() moves it to another
 * tree (a new version); stop() when done.
 */
export function rawObjectServer(objects: RawObjects, root: ObjectId, folder = "evil", options: RawServerOptions = {}) {
  let version = "ab".repeat(32);
  let heads = 0;
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(request) {
      const path = new URL(request.url).pathname;
      if (path === `/v1/folders/${folder}`) return Response.json({ name: folder, head: version, mode: "eventual" });
      if (path === `/v1/folders/${folder}/versions/${version}`) {
        return Response.json({ id: version, root: idToHex(root), parents: [], author: "x", time: new Date(0).toISOString() });
      }
      if (path === "/v1/objects/download") {
        const ids = decodeIdList(new Uint8Array(await request.arrayBuffer()));
        await options.beforeDownload?.(ids);
        const found = ids.filter((id) => objects.byHex.has(idToHex(id))).map((id) => ({ id, bytes: objects.byHex.get(idToHex(id))! }));
        return new Response(encodeDownloadReply(found, []) as unknown as BodyInit);
      }
      const one = /^\/v1\/objects\/([0-9a-f]{64})$/.exec(path);
      if (one && objects.byHex.has(one[1]!)) return new Response(objects.byHex.get(one[1]!) as unknown as BodyInit);
      return Response.json({ error: "no" }, { status: 404 });
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}`,
    folder,
    stop: () => server.stop(true),
    setHead(newRoot: ObjectId) {
      root = newRoot;
      version = (++heads).toString(16).padStart(2, "0").repeat(32);
    },
  };
}
