// dsync cert create [--out DIR] [--host NAME,...] [--force]: a node's private key and self-signed
// certificate, for dsync serve --tls-cert DIR/node.crt --tls-key DIR/node.key. Prints the
// certificate's fingerprint, which clients pin (--tls-fingerprint) and peers list (--peers URL#...).
import { randomBytes } from "node:crypto";
import { closeSync, constants, fsyncSync, linkSync, lstatSync, mkdirSync, openSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import { UsageError } from "../src/client/sync-target.ts";
import { terminalLines } from "../src/core/terminal-text.ts";
import { createNodeCertificate, hostNameProblem } from "../src/server/node-certificate.ts";
import { printJson } from "./errors.ts";

export const KEY_FILE_NAME = "node.key";
export const CERT_FILE_NAME = "node.crt";

export interface CertFlags {
  out?: string;
  host?: string;
  force?: boolean;
  json?: boolean;
}

/** The hosts a certificate names when --host is not given: loopback, and this machine's name. */
export function defaultHosts(): string[] {
  const hosts = ["localhost", "127.0.0.1"];
  const own = hostname();
  if (own && hostNameProblem(own) === null && !hosts.includes(own)) hosts.push(own);
  return hosts;
}

export function parseHosts(text: string | undefined): string[] {
  if (text === undefined) return defaultHosts();
  const hosts = [...new Set(String(text).split(",").map((host) => host.trim().replace(/^\[(.*)\]$/, "$1")).filter((host) => host !== ""))];
  if (hosts.length === 0) throw new UsageError("--host takes one or more names or addresses, comma-separated");
  if (hosts.length > 100) throw new UsageError(`--host takes at most 100 names, got ${hosts.length}`);
  for (const host of hosts) {
    const problem = hostNameProblem(host);
    if (problem) throw new UsageError(`--host ${JSON.stringify(host)}: ${problem}`);
  }
  return hosts;
}

function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw error;
  }
}

/**
 * Writes `bytes` at `path` durably: a fresh temp file (created exclusively, so a link planted at
 * its name is never followed), fsynced, then moved into place. Without `replace`, the move is a
 * hard link, which fails when something appeared at `path` meanwhile: nothing is overwritten.
 */
function writeFileAtomically(dirFd: number, dir: string, name: string, bytes: Uint8Array, mode: number, replace: boolean): void {
  const temp = join(dir, `.${name}.tmp-${randomBytes(8).toString("hex")}`);
  const fd = openSync(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
  try {
    try {
      for (let done = 0; done < bytes.length; ) done += writeSync(fd, bytes, done, bytes.length - done);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    if (replace) renameSync(temp, join(dir, name));
    else {
      linkSync(temp, join(dir, name));
      unlinkSync(temp);
    }
  } catch (error) {
    try {
      unlinkSync(temp);
    } catch {}
    throw error;
  }
  fsyncSync(dirFd);
}

export async function certCommand(action: string, flags: CertFlags): Promise<number> {
  if (action !== "create") throw new UsageError(`dsync cert knows "create", not ${JSON.stringify(action)}`);
  const dir = resolve(flags.out === undefined ? "." : String(flags.out));
  const hosts = parseHosts(flags.host);
  const keyPath = join(dir, KEY_FILE_NAME);
  const certPath = join(dir, CERT_FILE_NAME);
  if (!flags.force) {
    const present = [keyPath, certPath].filter(exists);
    if (present.length > 0) {
      throw new Error(`${present.join(" and ")} already ${present.length > 1 ? "exist" : "exists"}: a node's identity is not replaced by accident (its clients and peers pinned it); pass --force to make a new one`);
    }
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const made = await createNodeCertificate(hosts);
  const dirFd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    // The key first (readable by its owner alone), then its certificate; when the certificate
    // cannot be placed, the key just written is taken away again, so no half pair is left.
    writeFileAtomically(dirFd, dir, KEY_FILE_NAME, new TextEncoder().encode(made.keyPem), 0o600, flags.force === true);
    try {
      writeFileAtomically(dirFd, dir, CERT_FILE_NAME, new TextEncoder().encode(made.certPem), 0o644, flags.force === true);
    } catch (error) {
      if (!flags.force) unlinkSync(keyPath);
      throw error;
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EEXIST") throw new Error(`${keyPath} or ${certPath} appeared while the certificate was made; nothing was replaced (pass --force to replace them)`);
    throw error;
  } finally {
    closeSync(dirFd);
  }
  if (flags.json) {
    printJson({ key: keyPath, certificate: certPath, hosts, fingerprint: made.fingerprint });
    return 0;
  }
  process.stdout.write(
    terminalLines([
      `wrote ${keyPath} (private key, mode 0600) and ${certPath} (certificate for ${hosts.join(", ")})`,
      `fingerprint ${made.fingerprint}`,
      `serve with: dsync serve --tls-cert ${certPath} --tls-key ${keyPath}`,
    ]),
  );
  return 0;
}
