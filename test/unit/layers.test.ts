import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

/**
 * The layers of docs/ARCHITECTURE.md, enforced: every relative import under src/ (type imports too)
 * points to the same or a lower layer, and no two top-level folders import each other in a cycle.
 */
const SRC = path.resolve(__dirname, '..', '..', 'src');
const LAYER: Record<string, number> = {
  lib: 0, db: 0, types: 0, config: 0,
  infra: 1, vendors: 1, i18n: 1,
  ledger: 2, orders: 2, prices: 2, notifications: 2, wallet: 2,
  payments: 3,
  ussd: 4, ops: 4,
  'services.ts': 5,
  http: 6, jobs: 6, emulators: 6, sandbox: 6,
  'server.ts': 7, 'start.ts': 7, cli: 7,
};

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    return statSync(full).isDirectory() ? files(full) : name.endsWith('.ts') ? [full] : [];
  });
}
const top = (file: string) => path.relative(SRC, file).split(path.sep)[0]!;
const IMPORT = /(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g;

const edges: Array<{ from: string; to: string }> = [];
for (const file of files(SRC)) {
  for (const m of readFileSync(file, 'utf8').matchAll(IMPORT)) {
    const target = path.resolve(path.dirname(file), m[1]!);
    edges.push({ from: path.relative(SRC, file), to: path.relative(SRC, target) + (target.endsWith('.ts') ? '' : '.ts') });
  }
}

describe('layers (docs/ARCHITECTURE.md)', () => {
  test('every top-level folder and file of src/ has a layer', () => {
    const unknown = [...new Set(files(SRC).map(top))].filter((t) => !(t in LAYER));
    expect(unknown).toEqual([]);
  });

  test('no import points to a higher layer', () => {
    const upward = edges
      .filter((e) => LAYER[top(path.join(SRC, e.to))]! > LAYER[top(path.join(SRC, e.from))]!)
      .map((e) => `${e.from} -> ${e.to}`);
    expect(upward).toEqual([]);
  });

  test('no two top-level folders import each other, directly or around a loop', () => {
    const graph = new Map<string, Set<string>>();
    for (const e of edges) {
      const [a, b] = [top(path.join(SRC, e.from)), top(path.join(SRC, e.to))];
      if (a !== b) graph.set(a, (graph.get(a) ?? new Set()).add(b));
    }
    const cycles: string[] = [];
    const done = new Set<string>();
    const visit = (node: string, trail: string[]) => {
      if (trail.includes(node)) return void cycles.push([...trail.slice(trail.indexOf(node)), node].join(' -> '));
      if (done.has(node)) return;
      for (const next of graph.get(node) ?? []) visit(next, [...trail, node]);
      done.add(node);
    };
    for (const node of graph.keys()) visit(node, []);
    expect(cycles).toEqual([]);
  });
});
