import { expect, test } from "bun:test";
import { rawOptionValue, restoreTextOptions } from "../../cli/raw-options.ts";

test("text options keep what was typed, not what a number parser made of it", () => {
  const argv = ["bun", "main.ts", "pull", "dir", "--version", "0123", "--folder=007", "--message", "12e4", "--limit", "5"];
  const parsed: Record<string, unknown> = { version: 123, folder: 7, message: 120000, limit: 5 };
  restoreTextOptions(parsed, argv);
  expect(parsed).toEqual({ version: "0123", folder: "007", message: "12e4", limit: 5 });
  expect(rawOptionValue(argv, "token")).toBeUndefined();
  expect(rawOptionValue(["x", "--token", "1", "--token", "0002"], "token")).toBe("0002");
  expect(rawOptionValue(["x", "--", "--folder", "x"], "folder")).toBeUndefined();
});
