// dsync serve: runs a node until SIGINT or SIGTERM.
import { UsageError } from "../src/client/sync-target.ts";
import { DsyncNode } from "../src/node/node.ts";
import { isLoopback, parseListenAddress, startServer } from "../src/server/serve.ts";
import { parseCount } from "./errors.ts";
import { DSYNC_VERSION } from "./version.ts";

export interface ServeFlags {
  data?: string;
  listen?: string;
  token?: string;
  insecure?: boolean;
  keepVersions?: string;
  keepDays?: string;
  nodeId?: string;
}

export async function serveCommand(flags: ServeFlags): Promise<number> {
  const dataDir = flags.data ?? "./dsync-data";
  let address;
  try {
    address = parseListenAddress(flags.listen ?? "127.0.0.1:7700");
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const token = flags.token ?? (process.env.DSYNC_TOKEN || undefined);
  if (!token && !isLoopback(address.hostname) && !flags.insecure) {
    throw new UsageError(
      `refusing to listen on ${address.hostname} without a token: anyone who can reach it could read and change every folder. ` +
        "Set --token (or DSYNC_TOKEN), or pass --insecure if the network is trusted.",
    );
  }
  const node = await DsyncNode.open({
    dataDir,
    defaultKeepVersions: parseCount(flags.keepVersions, "--keep-versions") ?? null,
    defaultKeepDays: parseCount(flags.keepDays, "--keep-days") ?? null,
    nodeId: flags.nodeId,
  });
  let server;
  try {
    server = startServer(node, address, { token, version: DSYNC_VERSION });
  } catch (error) {
    await node.close();
    throw new Error(`cannot listen on ${address.hostname}:${address.port}: ${(error as Error).message}`);
  }
  process.stdout.write(`dsync node ${node.nodeId} listening on ${server.url} (data in ${dataDir})\n`);
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  process.stdout.write("dsync: shutting down\n");
  await server.stop();
  await node.close();
  return 0;
}
