// How this node writes a version: stamped by its hybrid logical clock (which goes on from the
// latest stamp recorded, and past every stamp received from a peer, so a version never sorts
// before one it follows), sealed, stored, and described for the version index.
import { hlcReceive, hlcTick, type HlcTimestamp } from "../core/hlc.ts";
import type { ObjectId } from "../core/id.ts";
import { sealObject, type Version } from "../core/objects.ts";
import type { VersionVector } from "../core/version-vector.ts";
import type { ObjectStore } from "../store/object-store.ts";
import type { Clock } from "./clock.ts";
import type { NewVersionRecord, VersionOrigin } from "./metadata-records.ts";

export interface VersionFields {
  root: ObjectId;
  parents: ObjectId[];
  message: string;
  chunking: string;
  versionVector: VersionVector;
}

export class VersionWriter {
  constructor(
    private readonly store: Pick<ObjectStore, "putMany">,
    private readonly clock: Clock,
    /** This node's id: the author of what it writes. */
    private readonly author: string,
    private hlc: HlcTimestamp,
  ) {}

  /** Moves the clock past a stamp this node took in (a peer's version). */
  receive(stamp: HlcTimestamp): void {
    this.hlc = hlcReceive(this.hlc, stamp, this.clock.nowMs());
  }

  /** Stamps, seals and stores a version by this node; durable when it resolves. */
  async write(fields: VersionFields): Promise<{ id: ObjectId; version: Version }> {
    this.hlc = hlcTick(this.hlc, this.clock.nowMs());
    const version: Version = {
      kind: "version",
      root: fields.root,
      parents: fields.parents,
      author: this.author,
      hlcWallMs: this.hlc.wallMs,
      hlcCounter: this.hlc.counter,
      message: fields.message,
      versionVector: [...fields.versionVector],
      chunking: fields.chunking,
    };
    const sealed = sealObject(version);
    await this.store.putMany([{ id: sealed.id, bytes: sealed.bytes }]);
    return { id: sealed.id, version };
  }

  /** The version index's record of a version, made or received now. */
  record(id: ObjectId, version: Version, origin: VersionOrigin, files: number, totalBytes: number): NewVersionRecord {
    return {
      id,
      root: version.root,
      parents: version.parents,
      author: version.author,
      hlcWallMs: version.hlcWallMs,
      hlcCounter: version.hlcCounter,
      message: version.message,
      origin,
      files,
      totalBytes,
      createdMs: this.clock.nowMs(),
    };
  }
}
