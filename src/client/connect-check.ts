// The connect phase of a request, seen on its own. Bun's fetch says nothing between "started" and
// "headers arrived", so a node that cannot be connected to (an address that drops packets) and a
// node that takes its time to answer look alike. Until a node has answered once, each request
// also opens a plain TCP connection to the same host and port and closes it at once: when that
// connects, the host is there and the wait for headers is the idle timeout's; when it does not
// within the connect timeout, the request ends saying so. A proxy from the environment would
// carry the real connection, so then no check is made (the header wait bounds the connect too).
import net from "node:net";

export class ConnectCheckError extends Error {
  override name = "ConnectCheckError";
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

/** The proxy variables Bun's fetch follows for this scheme, when one is set. */
export function proxyFor(url: URL, env: Record<string, string | undefined> = process.env): string | undefined {
  const names = url.protocol === "https:" ? ["HTTPS_PROXY", "https_proxy"] : ["HTTP_PROXY", "http_proxy"];
  for (const name of names) if (env[name]) return env[name];
  return undefined;
}

/**
 * Resolves once a TCP connection to the URL's host and port is made (and closed again); rejects
 * with the system's code (ECONNREFUSED, ENOTFOUND, ...) or ETIMEDOUT after `timeoutMs`. An abort
 * of `signal` closes the attempt and leaves the promise pending (the request ended otherwise).
 */
export function checkConnection(url: URL, timeoutMs: number, signal: AbortSignal): Promise<void> {
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const port = Number(url.port || (url.protocol === "https:" ? 443 : 80));
  return new Promise((resolve, reject) => {
    if (signal.aborted) return;
    const socket = net.connect({ host, port });
    const end = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", end);
      socket.destroy();
    };
    const timer = setTimeout(() => {
      end();
      reject(new ConnectCheckError(`no connection within ${timeoutMs} ms`, "ETIMEDOUT"));
    }, timeoutMs);
    signal.addEventListener("abort", end);
    socket.once("connect", () => {
      end();
      resolve();
    });
    socket.once("error", (error: NodeJS.ErrnoException) => {
      end();
      reject(new ConnectCheckError(error.message, error.code ?? "ECONNECT"));
    });
  });
}
