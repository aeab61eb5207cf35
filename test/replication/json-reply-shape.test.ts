// A peer's JSON (its folder listing, its error bodies) is bounded by what it parses into: more
// than LIMITS.jsonValuesMax values or LIMITS.jsonDepthMax levels is refused before JSON.parse
// builds it, whatever else the reply holds. The same walk guards JSON request bodies.
import { afterAll, describe, expect, test } from "bun:test";
import { checkJsonShape, parseJsonBounded } from "../../src/core/json-shape.ts";
import { DecodeError } from "../../src/core/encoding.ts";
import { LIMITS } from "../../src/core/limits.ts";
import { HttpPeerTransport } from "../../src/replication/http-transport.ts";

/** A hostile peer whose folder listing is valid but carries `junkValues` empty arrays besides. */
function hostilePeer(junkValues: number) {
  const junk = "[" + "[],".repeat(junkValues - 1) + "[]]";
  const body = `{"node":"a","folders":[{"name":"f","mode":"eventual","head":null,"vector":{}}],"next":null,"junk":${junk}}`;
  return Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response(body, { headers: { "content-type": "application/json" } }) });
}

const servers: ReturnType<typeof Bun.serve>[] = [];
afterAll(() => {
  for (const server of servers) server.stop(true);
});

describe("JSON from peers", () => {
  test("a listing holding more values than the bound is refused; one within it is read", async () => {
    const transport = new HttpPeerTransport({ clusterToken: "cluster-token", requestTimeoutMs: 10_000 });
    const over = hostilePeer(LIMITS.jsonValuesMax);
    servers.push(over);
    await expect(transport.listFolders(`http://127.0.0.1:${over.port}`)).rejects.toThrow(`more than ${LIMITS.jsonValuesMax} values`);
    const within = hostilePeer(1000);
    servers.push(within);
    const listing = await transport.listFolders(`http://127.0.0.1:${within.port}`);
    expect(listing.folders.map((f) => f.name)).toEqual(["f"]);
  });

  test("the walk: strings hide brackets and commas, escapes are skipped, depth is counted", () => {
    const count = (text: string) => {
      for (let max = 1; max < 100; max++) {
        try {
          checkJsonShape(text, max);
          return max;
        } catch {}
      }
      return -1;
    };
    expect(count('"[[[,,,]]]"')).toBe(1);
    expect(count('"a\\"[,"')).toBe(1);
    expect(count("[1,2,3]")).toBe(4);
    expect(count('{"a":[],"b":{}}')).toBe(5); // one, plus three containers and one separator
    expect(() => checkJsonShape("[".repeat(LIMITS.jsonDepthMax + 1))).toThrow(`nested deeper than ${LIMITS.jsonDepthMax} levels`);
    expect(() => checkJsonShape("[".repeat(LIMITS.jsonDepthMax) + "]".repeat(LIMITS.jsonDepthMax))).not.toThrow();
    expect(() => parseJsonBounded(new TextEncoder().encode("{nope"))).toThrow(DecodeError);
    expect(parseJsonBounded(new TextEncoder().encode('{"a":"x,y[z"}'))).toEqual({ a: "x,y[z" });
  });
});
