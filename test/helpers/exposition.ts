// A reader of the Prometheus text exposition format (0.0.4), for tests: the declared type of each
// family and every sample with its labels.

export interface Sample {
  /** The sample's own name (`x_bucket`, `x_count`, ...). */
  name: string;
  /** The family it belongs to (`x` for a histogram's `x_bucket`). */
  family: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  types: Map<string, string>;
  samples: Sample[];
  /** The value of the one sample of `name` whose labels include `labels`, summed when several match; 0 when none does. */
  value(name: string, labels?: Record<string, string>): number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/;

function parseLabels(text: string, line: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let at = 0;
  while (at < text.length) {
    const name = /^([a-zA-Z_][a-zA-Z0-9_]*)="/.exec(text.slice(at));
    if (!name) throw new Error(`bad labels in ${JSON.stringify(line)}`);
    at += name[0].length;
    let value = "";
    for (;;) {
      const char = text[at++];
      if (char === undefined) throw new Error(`unterminated label value in ${JSON.stringify(line)}`);
      if (char === '"') break;
      if (char === "\\") {
        const escaped = text[at++];
        value += escaped === "n" ? "\n" : escaped;
      } else value += char;
    }
    labels[name[1]!] = value;
    if (text[at] === ",") at++;
  }
  return labels;
}

export function parseExposition(text: string): Exposition {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) {
      types.set(type[1]!, type[2]!);
      continue;
    }
    if (line.startsWith("#")) continue;
    const match = SAMPLE.exec(line);
    if (!match) throw new Error(`not a sample line: ${JSON.stringify(line)}`);
    const name = match[1]!;
    const base = name.replace(/_(bucket|sum|count)$/, "");
    const family = types.has(name) ? name : types.get(base) === "histogram" || types.get(base) === "summary" ? base : name;
    samples.push({ name, family, labels: match[2] ? parseLabels(match[2], line) : {}, value: Number(match[3]) });
  }
  return {
    types,
    samples,
    value(name, labels = {}) {
      return samples
        .filter((sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value))
        .reduce((sum, sample) => sum + sample.value, 0);
    },
  };
}
