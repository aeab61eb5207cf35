// The JSON of POST /v1/verify (dsync verify --remote): what a verification found and, with
// --repair, what it fixed. The node builds it (src/node/verify.ts, which may not import this
// folder) and the server answers with it as it is; test/wire/report-shapes.test.ts holds the
// node's type to this one, so the two cannot drift apart.

/** A kept version's tree that breaks a structural rule. */
export interface StructureProblemJson {
  folder: string;
  /** The version whose tree breaks the rule (hex). */
  version: string;
  /** The object that breaks it (hex), and where it sits in the version's tree. */
  object: string;
  path: string;
  problem: string;
}

/** A needed object the node does not hold, and (some of) the versions that need it. */
export interface DamagedObjectJson {
  id: string;
  affected: { folder: string; version: string }[];
}

export interface VerifyReport {
  objectsChecked: number;
  /** Objects the re-hash found corrupt (now quarantined). */
  corrupt: string[];
  /** Objects the heads and kept versions name that were not stored when checked. */
  missing: string[];
  structure: StructureProblemJson[];
  metadataIntegrity: string;
  /** SQLite's check of the object store's index ("ok" for stores without one). */
  indexIntegrity: string;
  /** Objects in quarantine after the run (found corrupt, no good copy stored since). */
  quarantined: number;
  /** "peers": --repair asked the node's peers; "none": no repair asked, or nobody to ask (--data). */
  repairFrom: "peers" | "none";
  /** Objects stored again from a peer by this run (hex). */
  repaired: string[];
  /** Objects a kept version needs that are still not here: nothing could repair them (or no repair was asked). */
  unrepairable: DamagedObjectJson[];
  /** Quarantined objects no kept version needs (their damaged bytes stay until a good copy comes). */
  quarantinedUnneeded: number;
}
