// The dashboard's script, bundled for the browser (bundle.ts). No UI library: the page is a few
// tables and lists redrawn from the API's JSON, which plain DOM calls do in a few hundred lines
// and nothing to keep up to date. Names are data: every text from the node (folder and file
// names, node ids, messages, errors) goes in with textContent or a text node, never innerHTML.
//
// The token is asked for once and kept in sessionStorage (this tab only, gone when it closes),
// sent in the Authorization header, never put in a URL. Live updates come from GET /v1/events,
// read with fetch() because EventSource cannot send that header; on a disconnect the stream is
// opened again with Last-Event-ID, and a gap the node reports is shown.
import type { NodeStatus } from "../../client/remote.ts";
import { folderContentText, folderCountNotShown, folderPeerText, formatAgo, formatBytes, lagText, peerLag, peerStateText } from "../../client/status-summary.ts";
import { clusterView, ELECTION_TIMEOUT_MS } from "./cluster-view.ts";
import { DASHBOARD_FOLDERS_MAX, folderRows, readFolderPages, type FolderPage, type ListedFolder } from "./folder-list.ts";
import { counted } from "../../core/plural.ts";
import { SseParser } from "../../core/sse.ts";

const TOKEN_KEY = "dsync-token";
const RECENT_EVENTS_MAX = 4096;
const RATE_WINDOW_MS = 10_000;
/** The folder page asks which conflict copies each of this many newest merges made. */
const MERGES_EXAMINED_MAX = 50;

interface UiEvent {
  id?: number;
  type: string;
  time: string;
  folder: string | null;
  [field: string]: unknown;
}

interface VersionJson {
  id: string;
  time: string;
  author: string;
  origin: string;
  message: string;
  files: number;
  bytes: number;
  parents: string[];
}

let token: string | null = sessionStorage.getItem(TOKEN_KEY);
let status: NodeStatus | null = null;
const events: UiEvent[] = [];
let lastEventId = 0;
let streamAbort: AbortController | null = null;
let refreshTimer: ReturnType<typeof setTimeout> | null = null;
const conflictCopiesSeen = new Map<string, string[]>();

class Unauthorized extends Error {}

// ---------- DOM helpers (text only) ----------

type Child = Node | string | null | undefined | false;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

function badge(text: string, tone: "ok" | "warn" | "bad" | "strong" | "" = ""): HTMLElement {
  return el("span", { class: `badge ${tone}`.trim() }, text);
}

function table(headers: string[], rows: Child[][], label: string): HTMLElement {
  return el(
    "table",
    { "aria-label": label },
    el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, ...rows.map((cells) => el("tr", {}, ...cells.map((cell) => (cell instanceof HTMLTableCellElement ? cell : el("td", {}, cell)))))),
  );
}

function num(text: string): HTMLTableCellElement {
  return el("td", { class: "num" }, text);
}

function main(): HTMLElement {
  return document.getElementById("main")!;
}

function show(...children: Child[]): void {
  main().replaceChildren(...children.filter((c): c is Node | string => c !== null && c !== undefined && c !== false));
}

function folderHref(name: string): string {
  return `#folder=${encodeURIComponent(name)}`;
}

function currentFolder(): string | null {
  const match = /^#folder=(.*)$/.exec(location.hash);
  if (!match) return null;
  try {
    return decodeURIComponent(match[1]!);
  } catch {
    return null;
  }
}

// ---------- the API ----------

async function api<T>(path: string): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(path, { headers, cache: "no-store" });
  if (response.status === 401) throw new Unauthorized("the node refused this token");
  if (!response.ok) {
    const body = (await response.json().catch(() => ({}))) as { error?: string };
    throw new Error(body.error ?? `${response.status} ${response.statusText}`);
  }
  return (await response.json()) as T;
}

function signOut(message?: string): void {
  token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  streamAbort?.abort();
  streamAbort = null;
  setLive(false);
  showLogin(message);
}

function showLogin(message?: string): void {
  (document.getElementById("sign-out") as HTMLButtonElement).hidden = true;
  document.getElementById("node-line")!.textContent = "";
  const input = el("input", { id: "token", name: "token", type: "password", autocomplete: "current-password", required: "", "aria-describedby": "token-help" });
  const form = el(
    "form",
    { class: "login", "aria-label": "Sign in" },
    el("h1", {}, "Sign in to this node"),
    message ? el("p", { class: "error", role: "alert" }, message) : null,
    el("label", { for: "token" }, "Client token"),
    input,
    el("p", { id: "token-help", class: "muted" }, "The node's --token (DSYNC_TOKEN). It is kept in this tab only and never put in a URL."),
    el("button", { type: "submit", class: "primary" }, "Open dashboard"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    token = input.value.trim();
    sessionStorage.setItem(TOKEN_KEY, token);
    void start();
  });
  show(form);
  input.focus();
}

// ---------- live events ----------

function setLive(on: boolean): void {
  const live = document.getElementById("live")!;
  live.textContent = on ? "live" : "offline";
  live.classList.toggle("on", on);
}

function remember(event: UiEvent): void {
  events.push(event);
  if (events.length > RECENT_EVENTS_MAX) events.splice(0, events.length - RECENT_EVENTS_MAX);
}

/** Everything the node still holds, page by page, so a reload shows recent history too. */
async function loadHeldEvents(): Promise<void> {
  for (let page = 0; page < 8; page++) {
    const reply = await api<{ events: UiEvent[]; gap: unknown; lastId: number }>(`/v1/events?since=${lastEventId}&wait=0`);
    for (const event of reply.events) remember(event);
    lastEventId = reply.events.at(-1)?.id ?? reply.lastId;
    if (lastEventId >= reply.lastId) return;
  }
}

async function followEvents(): Promise<void> {
  streamAbort?.abort();
  const abort = new AbortController();
  streamAbort = abort;
  while (!abort.signal.aborted) {
    try {
      const headers: Record<string, string> = { accept: "text/event-stream", "last-event-id": String(lastEventId) };
      if (token) headers.authorization = `Bearer ${token}`;
      const response = await fetch("/v1/events", { headers, signal: abort.signal, cache: "no-store" });
      if (response.status === 401) return signOut("The node refused this token.");
      if (!response.ok || !response.body) throw new Error(`${response.status}`);
      setLive(true);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      const parser = new SseParser();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        for (const message of parser.push(value)) onServerEvent(message.event, message.data);
      }
    } catch {
      if (abort.signal.aborted) return;
    }
    setLive(false);
    // The node restarted or the connection broke: resume after the last event seen.
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

function onServerEvent(type: string, data: string): void {
  let event: UiEvent;
  try {
    event = JSON.parse(data) as UiEvent;
  } catch {
    return;
  }
  if (type === "gap") {
    // Events the node no longer holds (or from before its restart): say so, then refresh.
    remember({ type: "gap", time: new Date().toISOString(), folder: null, afterId: event.afterId, firstHeldId: event.firstHeldId, reason: event.reason });
  } else {
    remember(event);
    if (typeof event.id === "number") lastEventId = event.id;
  }
  scheduleRefresh(type === "push" || type === "pull" ? 1000 : 100);
}

/** Redraws after a burst of events settles (a push is many upload batches). */
function scheduleRefresh(delayMs: number): void {
  if (refreshTimer !== null) return;
  refreshTimer = setTimeout(() => {
    refreshTimer = null;
    void render();
  }, delayMs);
}

function describe(event: UiEvent): string {
  const where = event.folder !== null ? `${event.folder}: ` : "";
  const bytes = typeof event.bytes === "number" ? formatBytes(event.bytes) : "";
  switch (event.type) {
    case "push":
      return `${where}received ${counted(Number(event.objects), "object")}, ${bytes} from a client`;
    case "pull":
      return `${where}sent ${counted(Number(event.objects), "object")}, ${bytes} to a client`;
    case "commit":
      return `${where}new head ${String(event.version).slice(0, 12)} (${event.origin}${event.mergedWith ? ", merged onto a moved head" : ""}), ${counted(Number(event.files), "file")}`;
    case "fetch":
      return `${where}fetched ${counted(Number(event.versions), "version")}, ${counted(Number(event.objects), "object")}, ${bytes} from ${event.peerNode ?? event.peer}`;
    case "merge":
      return `${where}${event.outcome === "merged" ? "merged with" : "took the head of"} ${event.peerNode ?? event.peer}: ${String(event.version).slice(0, 12)}`;
    case "conflict":
      return `${where}conflict at ${event.path}, other side kept as ${(event.copies as string[] | undefined)?.join(", ") || "(none)"}`;
    case "verify":
      if (event.finding === "done") return `verify: ${counted(Number(event.objectsChecked), "object")} checked, ${event.corrupt} corrupt, ${event.missing} missing`;
      if (event.finding === "repaired") return `repaired ${counted(Number(event.count), "object")} from peers`;
      return `${where}verify found ${event.finding} ${event.object ?? ""}${event.path ? ` at ${event.path}` : ""}`;
    case "peer":
      return `peer ${event.peerNode ?? event.peer} ${event.reachable ? "reachable" : `unreachable: ${event.error ?? ""}`}`;
    case "gap":
      return event.reason === "restarted"
        ? "the node restarted: the events of its earlier run are gone"
        : event.reason === "unknown-id"
          ? "the node does not know the last event seen here: showing all it holds"
          : `missed events after #${event.afterId} (the node holds from #${event.firstHeldId})`;
    default:
      return `${where}${event.type}`;
  }
}

function eventList(list: UiEvent[], label: string): HTMLElement {
  if (list.length === 0) return el("p", { class: "muted" }, "nothing yet");
  return el(
    "ul",
    { class: "events", "aria-label": label },
    ...list
      .slice(-100)
      .reverse()
      .map((event) =>
        el(
          "li",
          { "data-type": event.type },
          el("time", { datetime: event.time }, new Date(event.time).toLocaleTimeString()),
          badge(event.type, event.type === "conflict" || event.type === "gap" ? "warn" : event.type === "verify" && event.finding !== "done" && event.finding !== "repaired" ? "bad" : ""),
          el("span", { class: "text" }, describe(event)),
        ),
      ),
  );
}

/** Bytes per second of each kind of transfer over the last RATE_WINDOW_MS. */
function transferRates(nowMs: number): { kind: string; label: string; bytes: number; objects: number; last: number | null }[] {
  const kinds = [
    { kind: "push", label: "received from clients (push)" },
    { kind: "pull", label: "sent to clients (pull)" },
    { kind: "fetch", label: "fetched from peers (replication)" },
  ];
  return kinds.map(({ kind, label }) => {
    let bytes = 0;
    let objects = 0;
    let last: number | null = null;
    for (const event of events) {
      if (event.type !== kind) continue;
      const at = Date.parse(event.time);
      last = at;
      if (nowMs - at > RATE_WINDOW_MS) continue;
      bytes += Number(event.bytes ?? 0);
      objects += Number(event.objects ?? 0);
    }
    return { kind, label, bytes, objects, last };
  });
}

// ---------- pages ----------

function nodeClock(): number {
  return status?.nowMs ?? Date.now();
}

/** Every folder up to DASHBOARD_FOLDERS_MAX, page by page, when the status holds only the first page of them. */
async function listedFolders(current: NodeStatus): Promise<ListedFolder[] | null> {
  if (folderCountNotShown(current) === 0) return null;
  return readFolderPages(
    (cursor) => api<FolderPage>(`/v1/folders?limit=1000${cursor === null ? "" : `&cursor=${encodeURIComponent(cursor)}`}`),
    DASHBOARD_FOLDERS_MAX,
  );
}

function frontPage(current: NodeStatus, listed: ListedFolder[] | null): Node[] {
  const now = nodeClock();
  const { rows: shownFolders, notShown } = folderRows(current, listed);
  // Files and bytes are known for the folders the status describes (the first page of them).
  const partial = current.folders.length < shownFolders.length + notShown ? ` (first ${current.folders.length} folders)` : "";
  const totalFiles = current.folders.reduce((sum, f) => sum + (f.files ?? 0), 0);
  const totalBytes = current.folders.reduce((sum, f) => sum + (f.bytes ?? 0), 0);
  const reachable = current.peers.filter((p) => p.reachable).length;
  const stats = el(
    "div",
    { class: "card stats", "aria-label": "Summary" },
    stat(current.node, "this node"),
    stat(`${reachable} / ${current.peers.length}`, "peers reachable"),
    stat(String(shownFolders.length + notShown), "folders"),
    stat(String(totalFiles), `files at the heads${partial}`),
    stat(formatBytes(totalBytes), `bytes at the heads${partial}`),
    stat(String(current.objects?.quarantined ?? 0), "objects quarantined"),
  );

  const nodeRows: Child[][] = [
    [el("td", { class: "name" }, current.node), badge("this node", "ok"), "—", el("td", { class: "mono" }, location.origin), "—"],
    ...current.peers.map((peer) => {
      const lag = peerLag(current, peer.address);
      return [
        el("td", { class: "name" }, peer.node ?? "(not heard from)"),
        badge(peer.reachable === null ? "not contacted" : peer.reachable ? "reachable" : "unreachable", peer.reachable ? "ok" : peer.reachable === null ? "" : "bad"),
        el("td", { title: peerStateText(peer) }, lagText(lag)),
        el("td", { class: "mono" }, peer.address),
        num(formatAgo(peer.lastContactMs, now)),
      ];
    }),
  ];
  const nodes = el("section", { class: "card", "aria-labelledby": "nodes-title" }, el("h2", { id: "nodes-title" }, "Nodes"), table(["node", "state", "lag", "address", "last contact"], nodeRows, "Nodes"));

  const cluster = clusterPanel(current, now);

  const corrupt = current.objects?.quarantined ?? 0;
  const rows: Child[][] = shownFolders.map(({ folder, summary }) => {
    const link = el("td", { class: "name" }, el("a", { href: folderHref(folder.name), "data-folder": folder.name }, folder.name));
    const head = el("td", { class: "mono" }, folder.head ? folder.head.slice(0, 12) : "(empty)");
    // Past the status's page: what the list says, the rest on the folder's own page.
    if (summary === undefined) return [link, modeBadge(folder.mode), head, num("—"), num("—"), num("—"), "—", badge("see its page")];
    // A strong folder is not compared with peers: every member applies the same log (the Cluster panel).
    if (summary.mode === "strong") return [link, modeBadge(summary.mode), head, ...folderFacts(summary, now), strongStanding(current)];
    const peers = summary.peers;
    const inSync = peers.filter((p) => p.state === "in-sync").length;
    const syncBadge =
      peers.length === 0 ? badge("no peers") : inSync === peers.length ? badge("in sync", "ok") : badge(`${peers.length - inSync} of ${peers.length} peers differ`, "warn");
    syncBadge.title = peers.map((p) => `${p.node ?? p.peer}: ${folderPeerText(p, corrupt)}`).join("\n");
    return [link, modeBadge(summary.mode), head, ...folderFacts(summary, now), syncBadge];
  });
  const folders = el(
    "section",
    { class: "card", "aria-labelledby": "folders-title" },
    el("h2", { id: "folders-title" }, "Folders"),
    shownFolders.length === 0
      ? el("p", { class: "muted" }, "No folders yet: push one with dsync push.")
      : table(["folder", "mode", "head", "files", "bytes", "last change", "changed by", "peers"], rows, "Folders"),
    notShown > 0 ? el("p", { class: "muted", id: "folders-not-shown" }, `and ${notShown} more (dsync ls lists every folder)`) : null,
  );

  const rates = transferRates(Date.now());
  const transfers = el(
    "section",
    { class: "card", "aria-labelledby": "transfers-title" },
    el("h2", { id: "transfers-title" }, "Transfers"),
    table(
      ["direction", "rate (10 s)", "objects (10 s)", "last"],
      rates.map((r) => [r.label, num(`${formatBytes(r.bytes / (RATE_WINDOW_MS / 1000))}/s`), num(String(r.objects)), num(formatAgo(r.last, Date.now()))]),
      "Transfers",
    ),
  );
  const recent = el("section", { class: "card", "aria-labelledby": "events-title" }, el("h2", { id: "events-title" }, "Recent events"), eventList(events, "Recent events"));
  return [stats, nodes, cluster, folders, el("div", { class: "grid" }, transfers, recent)];
}

type FolderSummary = NodeStatus["folders"][number];

function folderFacts(summary: FolderSummary, now: number): Child[] {
  return [
    num(String(summary.files ?? 0)),
    num(formatBytes(summary.bytes ?? 0)),
    num(formatAgo(summary.lastChangeMs ?? null, now)),
    el("td", {}, summary.changedBy ?? "—", summary.changeOrigin ? el("span", { class: "muted" }, ` (${summary.changeOrigin})`) : null),
  ];
}

const MODE_MEANING: Record<string, string> = {
  strong: "one head for the whole cluster, ordered by its Raft group: a push is acknowledged once a majority of the nodes hold it",
  eventual: "each node takes pushes and the nodes converge by replication, merging concurrent changes",
};

function modeBadge(mode: string): HTMLElement {
  const shown = badge(mode, mode === "strong" ? "strong" : "");
  shown.setAttribute("data-mode", mode);
  const meaning = MODE_MEANING[mode];
  if (meaning) shown.title = meaning;
  return shown;
}

/** How a strong folder stands here: the log, not the peers. */
function strongStanding(current: NodeStatus | null): HTMLElement {
  const consensus = current?.consensus;
  if (!consensus) return badge("no Raft group here", "bad");
  if (consensus.leader === null) return badge("no leader", "bad");
  if (consensus.applied < consensus.commit) return badge(`applying ${counted(consensus.commit - consensus.applied, "entry", "entries")}`, "warn");
  return badge("through the log", "ok");
}

/** What a strong folder's page says of the group, in words. */
function strongFolderText(current: NodeStatus | null): string {
  const consensus = current?.consensus;
  if (!consensus) return "This node reports no Raft group.";
  const leader = consensus.leader === null ? "no leader is known now, so pushes to it are refused (503) here" : consensus.leader.id === consensus.nodeId ? "this node leads the group" : `the leader is ${consensus.leader.id}`;
  return `Its head moves only through the cluster's Raft group (term ${consensus.term}, ${leader}); this node has applied the log to index ${consensus.applied} of ${consensus.commit} committed. A push is acknowledged once a majority of the members hold it.`;
}

/** The strong mode's Raft group as this node sees it. */
function clusterPanel(current: NodeStatus, now: number): HTMLElement {
  const heading = el("h2", { id: "cluster-title" }, "Cluster");
  if (!current.consensus) {
    return el("section", { class: "card", id: "cluster", "aria-labelledby": "cluster-title" }, heading, el("p", { class: "muted" }, "This node reports no Raft group (a dsync from before strong folders)."));
  }
  const view = clusterView(current.consensus, now, location.origin);
  const leader = view.leader
    ? el("strong", { id: "cluster-leader" }, view.leader.id, el("code", { class: "address" }, ` ${view.leader.address ?? "(address not known yet)"}`), view.leader.self ? badge("this node", "ok") : null)
    : el("strong", { id: "cluster-leader" }, badge("none", "bad"));
  const stats = el(
    "div",
    { class: "stats" },
    el("div", { class: "stat", id: "cluster-role" }, el("strong", {}, view.roleText), el("span", {}, "this node's role")),
    stat(String(view.term), "term"),
    el("div", { class: "stat" }, leader, el("span", {}, "leader")),
    stat(String(view.commit), "commit index"),
    stat(String(view.applied), view.applyBacklog > 0 ? `applied (${view.applyBacklog} to apply)` : "applied index"),
    stat(String(view.lastIndex), "last index"),
  );
  const problem = view.leaderProblem ? el("p", { class: "alert", id: "cluster-problem", role: "status" }, view.leaderProblem) : null;
  const rows: Child[][] = view.members.map((member) => {
    // A follower does not hear from the other followers: their last contact is shown, muted, and never flagged.
    const contact = el("td", { class: member.self || member.expected ? "num" : "num muted", title: member.note }, member.lastContactText);
    if (member.silent) contact.append(" ", badge("not heard from", "bad"));
    return [
      el("td", { class: "name" }, member.id, member.self ? el("span", {}, " ", badge("this node", "ok")) : null, member.leader ? el("span", {}, " ", badge("leader", "ok")) : null),
      el("td", { class: "mono" }, member.address ?? "(not known yet)"),
      num(member.matchText),
      contact,
    ];
  });
  const members = table(["member", "address", "match index", "last contact"], rows, "Raft members");
  for (const [i, member] of view.members.entries()) {
    const row = members.querySelectorAll("tbody tr")[i] as HTMLElement;
    row.setAttribute("data-member", member.id);
    if (member.silent) row.classList.add("silent");
  }
  return el(
    "section",
    { class: "card", id: "cluster", "aria-labelledby": "cluster-title" },
    heading,
    el("p", { class: "muted" }, "The Raft group that orders every strong folder's head; the match index is known on the leader only."),
    stats,
    problem,
    members,
  );
}

function stat(value: string, label: string): HTMLElement {
  return el("div", { class: "stat" }, el("strong", {}, value), el("span", {}, label));
}

async function folderPage(name: string): Promise<Node[]> {
  const path = encodeURIComponent(name);
  const [folder, history] = await Promise.all([
    api<{ name: string; head: string | null; mode: string; keepVersions: number | null; keepDays: number | null }>(`/v1/folders/${path}`),
    api<{ versions: VersionJson[] }>(`/v1/folders/${path}/versions?limit=200`),
  ]);
  const summary = status?.folders.find((f) => f.name === name);
  const now = nodeClock();
  // The copies each recent merge made, read by the node from the trees (any node gives the same);
  // the events this node saw add which path each copy stands beside.
  const merges = history.versions.filter((version) => version.parents.length > 1).slice(0, MERGES_EXAMINED_MAX);
  const copiesByVersion = new Map(
    await Promise.all(
      merges.map(async (version) => {
        // A version never changes, so neither do the copies it made: asked once per page load.
        const key = `${name} ${version.id}`;
        let copies = conflictCopiesSeen.get(key);
        if (copies === undefined) {
          copies = (await api<{ copies: string[] }>(`/v1/folders/${path}/versions/${version.id}/conflicts`)).copies;
          conflictCopiesSeen.set(key, copies);
        }
        return [version.id, copies] as const;
      }),
    ),
  );
  const pathOfCopy = new Map<string, string>();
  for (const event of events) {
    if (event.type !== "conflict" || event.folder !== name) continue;
    for (const copy of (event.copies as string[] | undefined) ?? []) pathOfCopy.set(`${event.version} ${copy}`, String(event.path));
  }
  const rows: Child[][] = history.versions.map((version) => {
    const copies = copiesByVersion.get(version.id) ?? [];
    const kind = version.origin === "merge" || version.parents.length > 1 ? badge("merge", "warn") : badge(version.origin);
    return [
      el("td", { class: "mono" }, version.id.slice(0, 12), version.id === folder.head ? el("span", {}, " ", badge("head", "ok")) : null),
      num(new Date(version.time).toLocaleString()),
      el("td", {}, version.author),
      el("td", {}, kind),
      el("td", {}, version.message || el("span", { class: "muted" }, "—")),
      num(String(version.files)),
      num(formatBytes(version.bytes)),
      el(
        "td",
        {},
        copies.length === 0
          ? ""
          : el(
              "div",
              {},
              badge(counted(copies.length, "conflict"), "warn"),
              el(
                "ul",
                { class: "conflict-paths", "aria-label": "Conflict copies" },
                ...copies.map((copy) => {
                  const beside = pathOfCopy.get(`${version.id} ${copy}`);
                  return el("li", {}, beside ?? "", el("span", { class: beside ? "muted" : "" }, `${beside ? " → " : "kept as "}${copy}`));
                }),
              ),
            ),
      ),
    ];
  });
  const info = el(
    "section",
    { class: "card stats", "aria-label": "Folder" },
    el("div", { class: "stat", id: "folder-mode" }, el("strong", {}, modeBadge(folder.mode)), el("span", {}, "mode")),
    stat(folder.head ? folder.head.slice(0, 12) : "(empty)", "head"),
    // A folder past the status's first page of folders has no summary: unknown, not zero.
    stat(summary ? String(summary.files ?? 0) : "—", "files"),
    stat(summary ? formatBytes(summary.bytes ?? 0) : "—", "bytes"),
    stat(formatAgo(summary?.lastChangeMs ?? null, now), `last change${summary?.changedBy ? ` by ${summary.changedBy}` : ""}`),
    stat(folder.keepVersions === null ? "all" : String(folder.keepVersions), "versions kept"),
  );
  // A strong folder's head is the log's on every member: its standing is the Raft group's, not a comparison with each peer.
  const strong =
    folder.mode === "strong"
      ? el(
          "section",
          { class: "card", id: "strong-standing", "aria-labelledby": "strong-title" },
          el("h2", { id: "strong-title" }, "Strong folder"),
          el("p", {}, strongStanding(status), " ", strongFolderText(status)),
        )
      : null;
  const peers = folder.mode !== "strong" && summary?.peers.length
    ? el(
        "section",
        { class: "card", "aria-labelledby": "peers-title" },
        el("h2", { id: "peers-title" }, "Against each peer"),
        table(["peer", "standing"], summary.peers.map((p) => [el("td", { class: "name" }, p.node ?? p.peer), folderPeerText(p, status?.objects?.quarantined ?? 0)]), "Peers"),
      )
    : null;
  const versions = el(
    "section",
    { class: "card", "aria-labelledby": "history-title" },
    el("h2", { id: "history-title" }, `History (${counted(history.versions.length, "version")}, newest first)`),
    table(["version", "time", "author", "kind", "message", "files", "bytes", "conflicts"], rows, "History"),
  );
  const folderEvents = el(
    "section",
    { class: "card", "aria-labelledby": "folder-events-title" },
    el("h2", { id: "folder-events-title" }, "Events of this folder"),
    eventList(
      events.filter((e) => e.folder === name),
      "Events of this folder",
    ),
  );
  const back = el("a", { class: "back", href: "#" }, "← All folders");
  return [back, el("h1", {}, name), info, strong ?? peers, versions, folderEvents].filter((part): part is HTMLElement => part !== null);
}

let rendering: Promise<void> | null = null;
let renderAgain = false;

async function render(): Promise<void> {
  if (rendering) {
    renderAgain = true;
    return rendering;
  }
  rendering = (async () => {
    do {
      renderAgain = false;
      try {
        status = await api<NodeStatus>("/v1/status");
        document.getElementById("node-line")!.textContent = `node ${status.node}${status.version ? ` · dsync ${status.version}` : ""}`;
        (document.getElementById("sign-out") as HTMLButtonElement).hidden = token === null;
        const folder = currentFolder();
        const nodes = folder === null ? frontPage(status, await listedFolders(status)) : await folderPage(folder);
        const focused = document.activeElement instanceof HTMLElement && main().contains(document.activeElement) ? document.activeElement.getAttribute("data-folder") : null;
        show(...nodes);
        // Keep the keyboard where it was across a live redraw.
        if (focused !== null) (main().querySelector(`[data-folder="${CSS.escape(focused)}"]`) as HTMLElement | null)?.focus();
      } catch (error) {
        if (error instanceof Unauthorized) {
          signOut("The node refused this token.");
          return;
        }
        show(el("p", { class: "error", role: "alert" }, `Could not load: ${(error as Error).message}`));
      }
    } while (renderAgain);
  })();
  try {
    await rendering;
  } finally {
    rendering = null;
  }
}

async function start(): Promise<void> {
  try {
    await api<NodeStatus>("/v1/status");
  } catch (error) {
    if (error instanceof Unauthorized) {
      showLogin(token ? "The node refused this token." : undefined);
      if (token) sessionStorage.removeItem(TOKEN_KEY);
      token = null;
      return;
    }
    show(el("p", { class: "error", role: "alert" }, `Could not reach the node: ${(error as Error).message}`));
    return;
  }
  await loadHeldEvents();
  await render();
  void followEvents();
}

document.getElementById("sign-out")!.addEventListener("click", () => signOut());
window.addEventListener("hashchange", () => {
  void render().then(() => main().focus());
});
// "How long ago" and the rates move on with time, not only with events.
setInterval(() => {
  if (status && currentFolder() === null && !document.querySelector("form.login")) scheduleRefresh(0);
}, 5000);
void start();
