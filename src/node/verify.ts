// dsync verify: every stored object re-hashed, every head's tree walked whole (the completeness
// marks ignored), every kept version's structure audited (structure-audit.ts), both databases'
// own checks, and what the kept versions need that is missing or quarantined, repaired from
// peers with --repair (verify-repair.ts). Findings go to the event log too.
import { idToHex, type ObjectId } from "../core/id.ts";
import type { ObjectStore } from "../store/object-store.ts";
import { IncompleteTreeError } from "./closure.ts";
import type { EventLog } from "./events.ts";
import type { MetadataStore } from "./metadata-store.ts";
import type { NodeStore } from "./node-store.ts";
import type { Repairer } from "./repair.ts";
import { auditStructure, type StructureProblem } from "./structure-audit.ts";
import { checkAndRepair, type RepairReport } from "./verify-repair.ts";
import { walkClosure } from "./walk.ts";

export interface VerifyParts {
  store: NodeStore;
  metadata: MetadataStore;
  /** Where --repair fetches from; none on a node without peers. */
  repairer: Repairer | undefined;
  events: EventLog;
}

/**
 * Re-hashes every stored object, checks every head's closure, the structure of every kept
 * version's tree (`structure`: which folder, version and object, and the rule broken), and
 * the metadata database.
 */
export async function verifyNode(parts: VerifyParts, options: { repair?: boolean }): Promise<VerifyReport> {
  const { store, metadata, events } = parts;
  // Counted before the re-hash quarantines what is corrupt, so those count as checked.
  const { objects } = await store.stats();
  const problems = await store.verifyAll();
  const missing: string[] = [];
  for (const folder of await metadata.listFolders()) {
    if (!folder.head) continue;
    const version = await metadata.getVersion(folder.name, folder.head);
    if (!version) {
      missing.push(idToHex(folder.head));
      continue;
    }
    try {
      await verifyTreeClosureFully(version.root, store);
    } catch (error) {
      const ids = (error as { missing?: ObjectId[] }).missing;
      if (ids) missing.push(...ids.map(idToHex));
      else throw error;
    }
  }
  const audit = await auditStructure(store, metadata);
  const reported = new Set(missing);
  for (const id of audit.missing) if (!reported.has(id)) missing.push(id);
  // --repair fetches every missing or quarantined object from peers; without peers (or without
  // --repair) the same accounting says what remains unrepaired and which versions need it.
  const repair = await checkAndRepair(store, metadata, options.repair ? parts.repairer : undefined);
  const report: VerifyReport = {
    objectsChecked: objects,
    corrupt: problems.map((p) => idToHex(p.id)),
    missing,
    structure: audit.problems,
    metadataIntegrity: await integrityOf(async () => metadata.integrityCheck()),
    indexIntegrity: await integrityOf(async () => (await store.integrityCheck?.()) ?? "ok"),
    ...repair,
  };
  reportVerify(events, report);
  return report;
}

/** Verify's findings as events (a corrupt object is already reported when it is quarantined). */
function reportVerify(events: EventLog, report: VerifyReport): void {
  for (const id of report.missing.slice(0, 100)) events.emit("verify", null, { finding: "missing", object: id });
  for (const problem of report.structure.slice(0, 100)) {
    events.emit("verify", problem.folder, { finding: "structure", version: problem.version, object: problem.object, path: problem.path, problem: problem.problem });
  }
  events.emit("verify", null, {
    finding: "done",
    objectsChecked: report.objectsChecked,
    corrupt: report.corrupt.length,
    missing: report.missing.length,
    structure: report.structure.length,
    repaired: report.repaired.length,
    unrepairable: report.unrepairable.length,
  });
}

/** What `dsync verify` found, and with --repair what it fixed. */
export type VerifyReport = {
  objectsChecked: number;
  /** Objects the re-hash found corrupt (now quarantined). */
  corrupt: string[];
  /** Objects the heads and kept versions name that were not stored when checked. */
  missing: string[];
  structure: StructureProblem[];
  metadataIntegrity: string;
  /** SQLite's check of the object store's index ("ok" for stores without one). */
  indexIntegrity: string;
} & RepairReport;

/** A database's integrity check; a check that fails outright (a damaged page it must read) is its own answer. */
export async function integrityOf(check: () => Promise<string>): Promise<string> {
  try {
    return await check();
  } catch (error) {
    return `integrity check failed: ${(error as Error).message}`;
  }
}

/** A closure check that ignores the completeness cache (for verify). */
async function verifyTreeClosureFully(root: ObjectId, store: ObjectStore): Promise<void> {
  const missing: ObjectId[] = [];
  await walkClosure([{ id: root, kind: "structured" }], store, { onMissing: (id) => missing.push(id) });
  if (missing.length > 0) throw new IncompleteTreeError(missing);
}
