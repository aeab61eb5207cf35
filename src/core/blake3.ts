// BLAKE3, the hash that names every object.
//
// The native build (@napi-rs/blake-hash, Rust BLAKE3 with SIMD) is 21-43x faster than the
// portable @noble/hashes implementation under Bun (see docs/benchmarks.md), so it is used
// whenever it loads. @noble/hashes stays as the portable fallback and as the reference the
// tests compare the native build against.
import { idFromBytes, type ObjectId } from "./id.ts";

type NobleBlake3 = typeof import("@noble/hashes/blake3.js").blake3;
let nobleBlake3: NobleBlake3 | undefined;
/** The portable implementation, loaded on first use: most runs never need it, and loading it costs start-up time. */
function noble(): NobleBlake3 {
  nobleBlake3 ??= (require("@noble/hashes/blake3.js") as typeof import("@noble/hashes/blake3.js")).blake3;
  return nobleBlake3;
}

export interface IncrementalHasher {
  update(bytes: Uint8Array): void;
  digest(): ObjectId;
}

interface Blake3Backend {
  name: string;
  hash(bytes: Uint8Array): Uint8Array;
  create(): { update(bytes: Uint8Array): unknown; digest(): Uint8Array };
}

const portableBackend: Blake3Backend = {
  name: "@noble/hashes (portable)",
  hash: (bytes) => noble()(bytes),
  create: () => noble().create(),
};

/** Why the native build is not in use, when it was wanted (DSYNC_BLAKE3=portable asks for the portable one). */
let nativeProblem: string | null = null;

function loadNativeBackend(): Blake3Backend | undefined {
  if (process.env.DSYNC_BLAKE3 === "portable") return undefined;
  try {
    // A literal require so `bun build --compile` embeds the native addon in the binary.
    const native = require("@napi-rs/blake-hash") as typeof import("@napi-rs/blake-hash");
    // The typings say Buffer; any Uint8Array works (Buffer is one).
    const probe = native.blake3(new Uint8Array(0) as Buffer);
    if (probe.length !== 32) {
      nativeProblem = `it returned a ${probe.length}-byte digest instead of 32`;
      return undefined;
    }
    return {
      name: "@napi-rs/blake-hash (native)",
      // Through the base64 string, not native.blake3's Buffer: each Buffer the addon makes is
      // native memory freed only by a finalizer, and a scan of a million small files (two hashes
      // each) grew by some 170 MB of them with the live heap at 20 MB. A string is ordinary heap
      // the collector sees, and the round trip is faster than the Buffer (663 ms against 954 ms
      // for a million 300-byte inputs on this machine).
      hash: (bytes) => Uint8Array.fromBase64(native.blake3UrlSafeBase64(bytes as Buffer), { alphabet: "base64url" }),
      create: () => {
        const hasher = new native.Blake3Hasher();
        return { update: (b: Uint8Array) => hasher.update(b as Buffer), digest: () => hasher.digestBuffer() };
      },
    };
  } catch (error) {
    nativeProblem = error instanceof Error ? error.message : String(error);
    return undefined;
  }
}

const backend: Blake3Backend = loadNativeBackend() ?? portableBackend;

/**
 * Why the native BLAKE3 could not load (null when it did, or when the portable one was asked
 * for): hashing then runs ~25x slower, which a user should hear of at start, not find in
 * /v1/health.
 */
export const blake3NativeProblem: string | null = nativeProblem;

/** Which implementation is in use, for logs and benchmarks. */
export const blake3BackendName = backend.name;

/** BLAKE3-256 of bytes, as an object id. Equal to what `b3sum` prints for the same bytes. */
export function blake3(bytes: Uint8Array): ObjectId {
  return backend.hash(bytes) as ObjectId;
}

export function createBlake3(): IncrementalHasher {
  const state = backend.create();
  return {
    update: (bytes) => void state.update(bytes),
    digest: () => idFromBytes(state.digest()),
  };
}

/** The reference implementation, for tests that check the fast path against it. */
export function blake3Portable(bytes: Uint8Array): ObjectId {
  return noble()(bytes) as ObjectId;
}

/** BLAKE3 of the empty input. */
export const EMPTY_BLAKE3_HEX = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262";
