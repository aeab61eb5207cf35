// Every parameter in a route's path is checked here, once, before any handler runs: a folder
// name, a version reference, an object id. A route cannot forget to check its parameters, and
// a bad one gets a 400 that says which parameter and why before anything is looked up or
// created. A parameter name without a rule is a programming error (500 on every call, caught by
// the route tests), so a new route cannot slip by unchecked either.
import type { Context, MiddlewareHandler } from "hono";
import { matchedRoutes } from "hono/route";
import { isIdHex } from "../core/id.ts";
import { validateFolderName, validateVersionRef } from "../core/names.ts";
import { nodeIdProblem } from "../node/node-id.ts";
import { checkNamed } from "./validate.ts";

/** Why a value of each route parameter is unacceptable, or undefined when it is fine. */
export const ROUTE_PARAM_RULES: Readonly<Record<string, (value: string) => string | undefined>> = {
  folder: validateFolderName,
  version: validateVersionRef,
  id: (value) => (isIdHex(value) ? undefined : "an object id is 64 lowercase hex digits"),
  tokenId: (value) => (/^[0-9a-f]{16}$/.test(value) ? undefined : "a token id is 16 lowercase hex digits"),
  node: nodeIdProblem,
};

/**
 * The decoded path parameters of every route matched for this request, exactly as the handlers
 * will read them. Hono answers c.req.param() for the handler at c.req.routeIndex, so each matched
 * route is visited in turn, and the index is put back for the handlers that follow.
 */
function matchedParams(c: Context): Record<string, string>[] {
  const own = c.req.routeIndex;
  try {
    return matchedRoutes(c).map((_, index) => {
      c.req.routeIndex = index;
      return c.req.param() as Record<string, string>;
    });
  } finally {
    c.req.routeIndex = own;
  }
}

export const checkRouteParams: MiddlewareHandler = async (c, next) => {
  for (const params of matchedParams(c)) {
    for (const [name, value] of Object.entries(params)) {
      const rule = ROUTE_PARAM_RULES[name];
      if (!rule) throw new Error(`the route parameter :${name} has no validation rule (add one to ROUTE_PARAM_RULES)`);
      checkNamed(name, value, rule);
    }
  }
  await next();
};
