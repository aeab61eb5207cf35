// Syncthing for the benchmarks that compare with it (node-memory.ts, replication.ts): two
// instances on loopback, one sending its folder, the other receiving it, configured for loopback
// only (no discovery, relays, NAT, usage reports, upgrades or crash reports), driven through
// their REST API.
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { cleanEnv, freePort, runTimed } from "./push-lib.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Files under `dir`, leaving out Syncthing's own (.stfolder, .stignore, .stversions). */
export function countFiles(dir: string): number {
  let count = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name.startsWith(".st")) continue;
    count += entry.isDirectory() ? countFiles(join(dir, entry.name)) : 1;
  }
  return count;
}

export interface SyncthingInstance {
  home: string;
  deviceId: string;
  guiPort: number;
  listenPort: number;
  apiKey: string;
  proc?: Subprocess;
}

export async function generateSyncthing(home: string): Promise<SyncthingInstance> {
  rmSync(home, { recursive: true, force: true });
  const generated = await runTimed(["syncthing", "generate", `--home=${home}`, "--no-default-folder"]);
  const deviceId = /Device ID: (\S+)/.exec(generated.stdout + generated.stderr)?.[1];
  if (!deviceId) throw new Error(`syncthing generate printed no device id: ${generated.stdout}${generated.stderr}`);
  const apiKey = /<apikey>([^<]+)<\/apikey>/.exec(readFileSync(join(home, "config.xml"), "utf8"))?.[1];
  if (!apiKey) throw new Error(`no API key in ${home}/config.xml`);
  return { home, deviceId, guiPort: freePort(), listenPort: freePort(), apiKey };
}

/** Loopback only: no discovery, relays, NAT, usage reports, upgrades or crash reports. */
export function configureSyncthing(self: SyncthingInstance, peer: SyncthingInstance, folderPath: string, folderType: "sendonly" | "receiveonly"): void {
  const path = join(self.home, "config.xml");
  let xml = readFileSync(path, "utf8");
  const set = (tag: string, value: string) => {
    const pattern = new RegExp(`<${tag}>[^<]*</${tag}>`);
    if (!pattern.test(xml)) throw new Error(`no <${tag}> in ${path}`);
    xml = xml.replace(pattern, `<${tag}>${value}</${tag}>`);
  };
  set("listenAddress", `tcp://127.0.0.1:${self.listenPort}`);
  set("globalAnnounceEnabled", "false");
  set("localAnnounceEnabled", "false");
  set("relaysEnabled", "false");
  set("natEnabled", "false");
  set("startBrowser", "false");
  set("urAccepted", "-1");
  set("autoUpgradeIntervalH", "0");
  set("crashReportingEnabled", "false");
  set("setLowPriority", "false");
  xml = xml.replace(/<gui enabled="true" tls="false" debugging="false">\s*<address>[^<]*<\/address>/, (m) => m.replace(/<address>[^<]*<\/address>/, `<address>127.0.0.1:${self.guiPort}</address>`));
  const folder = `
    <folder id="bench" label="bench" path="${folderPath}" type="${folderType}" rescanIntervalS="3600" fsWatcherEnabled="false" fsWatcherDelayS="10" ignorePerms="false" autoNormalize="true">
        <filesystemType>basic</filesystemType>
        <device id="${self.deviceId}" introducedBy=""></device>
        <device id="${peer.deviceId}" introducedBy=""></device>
        <minDiskFree unit="%">1</minDiskFree>
    </folder>
    <device id="${peer.deviceId}" name="peer" compression="metadata" introducer="false" skipIntroductionRemovals="false" introducedBy="">
        <address>tcp://127.0.0.1:${peer.listenPort}</address>
        <paused>false</paused>
        <autoAcceptFolders>false</autoAcceptFolders>
    </device>
    <gui `;
  xml = xml.replace(/\n\s*<gui /, folder);
  writeFileSync(path, xml);
}

/** One REST call; `timeoutMs` past 10 s for a long poll of the event API. */
export async function syncthingRest(instance: SyncthingInstance, path: string, init: RequestInit = {}, timeoutMs = 10_000): Promise<unknown> {
  const response = await fetch(`http://127.0.0.1:${instance.guiPort}${path}`, { ...init, headers: { "X-API-Key": instance.apiKey }, signal: AbortSignal.timeout(timeoutMs) });
  if (!response.ok) throw new Error(`syncthing ${path}: ${response.status} ${await response.text()}`);
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

/** Syncthing runs its work in a child of a monitor process (even with --no-restart): that child. */
export function workerPid(monitorPid: number): number {
  // A Go program forks from whichever of its threads runs the call: read every thread's children.
  const children = readdirSync(`/proc/${monitorPid}/task`).flatMap((task) => readFileSync(`/proc/${monitorPid}/task/${task}/children`, "utf8").trim().split(/\s+/).filter(Boolean));
  if (children.length !== 1) throw new Error(`the Syncthing monitor ${monitorPid} has ${children.length} children, expected its one worker`);
  return Number(children[0]);
}

export async function startSyncthing(instance: SyncthingInstance): Promise<void> {
  instance.proc = Bun.spawn(["syncthing", "serve", `--home=${instance.home}`, "--no-browser", "--no-restart", "--no-upgrade"], {
    env: { ...cleanEnv(), STNOUPGRADE: "1", STNODEFAULTFOLDER: "1" },
    stdout: "ignore",
    stderr: "ignore",
    stdin: "ignore",
  });
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      await syncthingRest(instance, "/rest/system/ping");
      return;
    } catch (error) {
      if (instance.proc.exitCode !== null) throw new Error(`syncthing in ${instance.home} exited with ${instance.proc.exitCode}`);
      if (Date.now() > deadline) throw new Error(`syncthing in ${instance.home} did not answer within 60 s: ${(error as Error).message}`);
      await sleep(200);
    }
  }
}
