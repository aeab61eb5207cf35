// A node's TLS identity: the self-signed certificate `dsync cert create` makes, and the checks
// `dsync serve --tls-cert --tls-key` runs on the files before it listens. The certificate is
// built and signed by pkijs over WebCrypto (ECDSA P-256, SHA-256); no ASN.1 is written here.
import { createPrivateKey, X509Certificate, type KeyObject } from "node:crypto";
import { isIP } from "node:net";
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import { fingerprintOfDer } from "../wire/tls-fingerprint.ts";

/** How long a made certificate is valid: a pinned identity, not a CA-issued one to renew yearly. */
export const NODE_CERTIFICATE_DAYS = 3650;

export interface MadeCertificate {
  certPem: string;
  keyPem: string;
  fingerprint: string;
}

const OID = {
  commonName: "2.5.4.3",
  basicConstraints: "2.5.29.19",
  keyUsage: "2.5.29.15",
  extKeyUsage: "2.5.29.37",
  subjectAltName: "2.5.29.17",
  serverAuth: "1.3.6.1.5.5.7.3.1",
  clientAuth: "1.3.6.1.5.5.7.3.2",
} as const;

function pem(label: string, der: ArrayBuffer | Uint8Array): string {
  const base64 = Buffer.from(der instanceof Uint8Array ? der : new Uint8Array(der)).toString("base64");
  return `-----BEGIN ${label}-----\n${base64.replace(/.{1,64}/g, "$&\n")}-----END ${label}-----\n`;
}

function ipBytes(ip: string): Uint8Array {
  if (isIP(ip) === 4) return Uint8Array.from(ip.split(".").map(Number));
  // IPv6: expand "::" and write each group as two bytes.
  const [head, tail] = ip.includes("::") ? ip.split("::") : [ip, undefined];
  const headGroups = head ? head.split(":") : [];
  const tailGroups = tail ? tail.split(":") : [];
  const groups = tail === undefined ? headGroups : [...headGroups, ...Array(8 - headGroups.length - tailGroups.length).fill("0"), ...tailGroups];
  const out = new Uint8Array(16);
  groups.forEach((group, index) => {
    const value = parseInt(group, 16);
    out[index * 2] = value >> 8;
    out[index * 2 + 1] = value & 0xff;
  });
  return out;
}

/** A host name or an IP address a certificate can name; null when it is neither. */
export function hostNameProblem(host: string): string | null {
  if (isIP(host) === 4) return null;
  if (isIP(host) === 6) return host.includes(".") ? "an IPv6 address with an embedded IPv4 part is not supported; write it in hex groups" : null;
  if (host.length > 253) return "a host name is at most 253 characters";
  if (!/^(?:\*\.)?[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/.test(host)) {
    return "a host name is letters, digits and hyphens in dot-separated labels (or an IP address)";
  }
  return null;
}

/**
 * A new key pair and a self-signed certificate naming `hosts` (DNS names and IP addresses) in
 * its SubjectAltName. It is a leaf (not a CA: it can sign no other certificate), for serving and
 * for proving the node's identity to its peers (src/wire/peer-proof.ts).
 */
export async function createNodeCertificate(hosts: readonly string[], now = new Date()): Promise<MadeCertificate> {
  if (hosts.length === 0) throw new Error("a certificate needs at least one host name or address");
  for (const host of hosts) {
    const problem = hostNameProblem(host);
    if (problem) throw new Error(`${JSON.stringify(host)}: ${problem}`);
  }
  const subtle = globalThis.crypto.subtle;
  const algorithm = { name: "ECDSA", namedCurve: "P-256" };
  const keys = (await subtle.generateKey(algorithm, true, ["sign", "verify"])) as CryptoKeyPair;
  const certificate = new pkijs.Certificate();
  certificate.version = 2;
  // A positive 128-bit serial: random, so two certificates made for one host never share one.
  const serial = globalThis.crypto.getRandomValues(new Uint8Array(16));
  serial[0] = (serial[0]! & 0x7f) | 0x01;
  certificate.serialNumber = new asn1js.Integer({ valueHex: serial });
  const name = new pkijs.AttributeTypeAndValue({ type: OID.commonName, value: new asn1js.Utf8String({ value: `dsync node ${hosts[0]}`.slice(0, 64) }) });
  certificate.subject.typesAndValues.push(name);
  certificate.issuer.typesAndValues.push(new pkijs.AttributeTypeAndValue({ type: OID.commonName, value: new asn1js.Utf8String({ value: `dsync node ${hosts[0]}`.slice(0, 64) }) }));
  // An hour back, for clocks a little behind the one that made it.
  certificate.notBefore.value = new Date(now.getTime() - 3600_000);
  certificate.notAfter.value = new Date(now.getTime() + NODE_CERTIFICATE_DAYS * 86400_000);
  const basicConstraints = new pkijs.BasicConstraints({ cA: false });
  const keyUsage = new asn1js.BitString({ valueHex: Uint8Array.from([0x80]), unusedBits: 7 }); // digitalSignature
  const extKeyUsage = new pkijs.ExtKeyUsage({ keyPurposes: [OID.serverAuth, OID.clientAuth] });
  const altNames = new pkijs.AltName({
    altNames: hosts.map((host) =>
      isIP(host) ? new pkijs.GeneralName({ type: 7, value: new asn1js.OctetString({ valueHex: ipBytes(host) }) }) : new pkijs.GeneralName({ type: 2, value: host }),
    ),
  });
  certificate.extensions = [
    new pkijs.Extension({ extnID: OID.basicConstraints, critical: true, extnValue: basicConstraints.toSchema().toBER(false), parsedValue: basicConstraints }),
    new pkijs.Extension({ extnID: OID.keyUsage, critical: true, extnValue: keyUsage.toBER(false), parsedValue: keyUsage }),
    new pkijs.Extension({ extnID: OID.extKeyUsage, critical: false, extnValue: extKeyUsage.toSchema().toBER(false), parsedValue: extKeyUsage }),
    new pkijs.Extension({ extnID: OID.subjectAltName, critical: false, extnValue: altNames.toSchema().toBER(false), parsedValue: altNames }),
  ];
  await certificate.subjectPublicKeyInfo.importKey(keys.publicKey);
  await certificate.sign(keys.privateKey, "SHA-256");
  const der = new Uint8Array(certificate.toSchema(true).toBER(false));
  const pkcs8 = await subtle.exportKey("pkcs8", keys.privateKey);
  const certPem = pem("CERTIFICATE", der);
  // What was made is read back by node:crypto, the parser the node itself will use.
  new X509Certificate(certPem);
  return { certPem, keyPem: pem("PRIVATE KEY", pkcs8), fingerprint: fingerprintOfDer(der) };
}

/** A node's certificate and key as `serve` uses them: checked to belong together. */
export interface TlsIdentity {
  certPem: string;
  keyPem: string;
  certificate: X509Certificate;
  privateKey: KeyObject;
  fingerprint: string;
}

/**
 * Reads the two PEM texts and checks them: a certificate node:crypto parses, a private key it
 * parses, the key being the certificate's, and a certificate valid now. Each failure is one
 * sentence naming the file, said before the node listens.
 */
export function tlsIdentityOf(certPem: string, keyPem: string, names: { cert: string; key: string }, now = new Date()): TlsIdentity {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(certPem);
  } catch (error) {
    throw new Error(`--tls-cert ${names.cert} is not a PEM certificate: ${(error as Error).message}`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(keyPem);
  } catch (error) {
    throw new Error(`--tls-key ${names.key} is not a PEM private key (an encrypted key is not supported): ${(error as Error).message}`);
  }
  if (!certificate.checkPrivateKey(privateKey)) {
    throw new Error(`--tls-key ${names.key} is not the key of --tls-cert ${names.cert} (${fingerprintOfDer(certificate.raw)}): give the pair dsync cert create wrote together`);
  }
  const validFrom = new Date(certificate.validFrom);
  const validTo = new Date(certificate.validTo);
  if (now < validFrom) throw new Error(`--tls-cert ${names.cert} is not valid before ${validFrom.toISOString()} (is this machine's clock right?)`);
  if (now > validTo) throw new Error(`--tls-cert ${names.cert} expired on ${validTo.toISOString()}: make a new one (dsync cert create --force) and give its fingerprint to clients and peers`);
  return { certPem, keyPem, certificate, privateKey, fingerprint: fingerprintOfDer(certificate.raw) };
}
