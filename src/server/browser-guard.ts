// What keeps web pages off an address served without a token.
//
// A node without a token (allowed on loopback) trusts whoever can connect. A web page open in a
// browser on the same machine can connect too: it can send a POST that needs no preflight (a
// text/plain body: `POST /v1/gc {"graceMs":0}`, a restore), and a name it controls that it
// points at 127.0.0.1 (DNS rebinding) makes the node same-origin to it, so it can read every
// folder. Browsers say where a request comes from, so two checks shut both out:
//
// - the Host header must name a loopback address (`localhost`, 127.x.x.x, [::1]) when the
//   address listened on is loopback: a rebound name is refused (421);
// - an Origin header, when present, must be this address's own origin (`http://` + Host):
//   a request from any other page is refused (403). Tools (the CLI, curl, Prometheus) send no
//   Origin; the dashboard's own requests carry its own origin.
//
// With a token, neither is needed (a page cannot read the token, and no CORS header lets it
// send one), so serve.ts applies the guard only where no token protects the address.

/** The host part of a Host header value ("[::1]:7000" → "::1", "localhost:7000" → "localhost"). */
function hostName(hostHeader: string): string {
  const bracketed = /^\[([^\]]*)\](?::\d*)?$/.exec(hostHeader);
  if (bracketed) return bracketed[1]!;
  return hostHeader.replace(/:\d*$/, "");
}

function isLoopbackName(name: string): boolean {
  const lower = name.toLowerCase().replace(/\.$/, "");
  return lower === "localhost" || lower === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(lower);
}

export interface BrowserGuardOptions {
  /** The address listened on is loopback: only loopback names are accepted in Host. */
  loopbackOnly: boolean;
}

/** Why this request is refused (status and reason), or undefined to let it through. */
export function browserRefusal(request: Request, options: BrowserGuardOptions): { status: number; error: string } | undefined {
  const host = request.headers.get("host") ?? new URL(request.url).host;
  if (options.loopbackOnly && !isLoopbackName(hostName(host))) {
    return { status: 421, error: "this node serves loopback names only (Host must be localhost, 127.0.0.1 or [::1]); it has no token to protect it from other names" };
  }
  const origin = request.headers.get("origin");
  if (origin !== null && origin.toLowerCase() !== `http://${host}`.toLowerCase()) {
    return { status: 403, error: "requests from other web pages are refused: this node has no token to protect it" };
  }
  return undefined;
}

/** `fetch` with the guard in front. */
export function guardAgainstBrowsers(fetch: (request: Request) => Response | Promise<Response>, options: BrowserGuardOptions): (request: Request) => Response | Promise<Response> {
  return (request) => {
    const refusal = browserRefusal(request, options);
    if (refusal) return Response.json({ error: refusal.error }, { status: refusal.status });
    return fetch(request);
  };
}
