import packageJson from "../package.json" with { type: "json" };

export const DSYNC_VERSION: string = packageJson.version;
