// dsync cluster add URL | remove NODE: who is a member of the cluster's log (the Raft group that
// orders strong folders), changed through its leader.
import { terminalLines } from "../src/core/terminal-text.ts";
import { UsageError } from "../src/client/sync-target.ts";
import { nodeIdProblem } from "../src/node/node-id.ts";
import { printJson } from "./errors.ts";
import { remoteFor } from "./remote-target.ts";

export async function clusterCommand(action: string, target: string, flags: { remote?: string; json?: boolean }): Promise<number> {
  const remote = remoteFor(flags);
  const value = String(target);
  if (action === "add") {
    if (!/^https?:\/\/[^/]+\/?$/.test(value)) throw new UsageError(`dsync cluster add takes a node's URL, http(s)://HOST:PORT, got ${JSON.stringify(value)}`);
    const added = await remote.addMember(value);
    if (flags.json) printJson(added);
    else process.stdout.write(terminalLines([added.added ? `added node ${added.node} (${added.address}) to the cluster` : `node ${added.node} (${added.address}) is a member already`]));
    return 0;
  }
  if (action === "remove") {
    const problem = nodeIdProblem(value);
    if (problem) throw new UsageError(`dsync cluster remove takes a node id (dsync status lists the members): ${problem}`);
    const removed = await remote.removeMember(value);
    if (flags.json) printJson(removed);
    else process.stdout.write(terminalLines([`removed node ${removed.node} from the cluster`]));
    return 0;
  }
  throw new UsageError(`unknown cluster action ${JSON.stringify(action)}: dsync cluster add URL, or dsync cluster remove NODE`);
}
