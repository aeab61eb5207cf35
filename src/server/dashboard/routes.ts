// The web dashboard at `/`: one page, one script and one style sheet, all embedded in the
// binary (bundle.ts), served with a Content-Security-Policy that allows nothing but this
// origin: no inline script, no other host, no framing. The page holds no data and no token;
// the script asks for the token and calls the /v1 API with it in the Authorization header.
import type { Context, Hono } from "hono";
import { dashboardAsset, dashboardScript } from "./bundle.ts" with { type: "macro" };

const PAGE: string = dashboardAsset("index.html");
const STYLE: string = dashboardAsset("style.css");
const SCRIPT: string = dashboardScript();

export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

function asset(c: Context, body: string, contentType: string) {
  return c.body(body, 200, {
    "content-type": contentType,
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    // Small, and a new binary may bring a new script: always revalidate.
    "cache-control": "no-cache",
  });
}

export function registerDashboardRoutes(app: Hono): void {
  app.get("/", (c) => asset(c, PAGE, "text/html; charset=utf-8"));
  app.get("/ui", (c) => c.redirect("/", 302));
  app.get("/ui/app.js", (c) => asset(c, SCRIPT, "text/javascript; charset=utf-8"));
  app.get("/ui/style.css", (c) => asset(c, STYLE, "text/css; charset=utf-8"));
  // Browsers ask for it by themselves; nothing to show, and no 404 in the console.
  app.get("/favicon.ico", (c) => c.body(null, 204));
}
