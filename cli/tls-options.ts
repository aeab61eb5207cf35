// --tls-fingerprint and --ca of every command that talks to a node, applied before the command
// runs and for the whole process (src/client/tls-settings.ts), so every RemoteNode it makes,
// however deep, verifies the node the same way. `serve` has a --ca of its own (for its peers).
import { chooseTls } from "../src/client/tls-settings.ts";

export function applyTlsOptions(options: { tlsFingerprint?: unknown; ca?: unknown }): void {
  chooseTls({
    fingerprint: options.tlsFingerprint === undefined ? undefined : String(options.tlsFingerprint),
    caFile: options.ca === undefined ? undefined : String(options.ca),
  });
}
