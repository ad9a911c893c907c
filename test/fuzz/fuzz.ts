/**
 * Seeded mutation fuzzer for the checkpoint readers.
 *
 *   node --import tsx test/fuzz/fuzz.ts --cases 10000 --seed 1 [--start K] [--only 12,345] [--save-failures]
 *                                       [--time-limit 1000] [--verbose]
 *
 * Every case must end in a parse or a typed LoraLensError naming the file, within the time limit, without an
 * allocation beyond 4 × the file size + 1 MiB and without leaking a file descriptor. Exit status 1 on any failure.
 * `--only` replays single cases (printing the mutations applied); `--save-failures` writes failing inputs to
 * test/corpus/ for triage (add them to corpus.json once the reader is fixed).
 */
import { corpusDir, makeCase, runFuzz } from './run';

function parseArgs(argv: string[]) {
  const o = { cases: 10_000, seed: 1, start: 0, only: undefined as number[] | undefined, save: false, timeLimit: 1000, verbose: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    const int = (v: string) => {
      const n = Number(v);
      if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${a}: expected a non-negative integer, got ${v}`);
      return n;
    };
    if (a === '--cases') o.cases = int(next());
    else if (a === '--seed') o.seed = int(next()) >>> 0;
    else if (a === '--start') o.start = int(next());
    else if (a === '--only') o.only = next().split(',').map(int);
    else if (a === '--save-failures') o.save = true;
    else if (a === '--time-limit') o.timeLimit = int(next());
    else if (a === '--verbose' || a === '-v') o.verbose = true;
    else throw new Error(`unknown option ${a}`);
  }
  return o;
}

async function main(): Promise<number> {
  let o;
  try {
    o = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`fuzz: ${(e as Error).message}\n`);
    return 2;
  }
  if (o.only) {
    for (const i of o.only) {
      const c = makeCase(o.seed, i);
      process.stdout.write(`case ${i}: ${c.base.name} (${c.bytes.length} bytes): ${c.ops.join('; ')}\n`);
    }
  }
  const s = await runFuzz({
    cases: o.cases,
    seed: o.seed,
    start: o.start,
    ...(o.only ? { only: o.only } : {}),
    timeLimitMs: o.timeLimit,
    ...(o.save ? { saveFailuresTo: corpusDir } : {}),
    onProgress: process.stderr.isTTY || o.verbose ? (d, t) => process.stderr.write(`\r${d}/${t}`) : undefined,
  });
  if (process.stderr.isTTY || o.verbose) process.stderr.write('\n');
  const out = (l = '') => process.stdout.write(`${l}\n`);
  out(`fuzz: seed ${s.seed}, ${s.cases} cases in ${s.seconds.toFixed(1)} s (${((s.seconds * 1e6) / Math.max(1, s.cases)).toFixed(0)} µs/case, slowest ${s.slowestMs.toFixed(0)} ms)`);
  out('outcomes:');
  for (const [label, n] of Object.entries(s.outcomes).sort((a, b) => b[1] - a[1])) out(`  ${String(n).padStart(8)}  ${label}`);
  if (o.verbose) {
    out('cases per seed:');
    for (const [name, n] of Object.entries(s.perSeed).sort()) out(`  ${String(n).padStart(8)}  ${name}`);
  }
  if (s.failures.length === 0) {
    out('failures: none');
    return 0;
  }
  out(`failures: ${s.failures.length}`);
  for (const f of s.failures.slice(0, 50)) {
    out(`  case ${f.index} (seed ${s.seed}) from ${f.seed}: ${f.label}`);
    out(`    mutations: ${f.ops.join('; ')}`);
    out(`    ${f.reason.split('\n').join('\n    ')}`);
    out(`    reproduce: node --import tsx test/fuzz/fuzz.ts --seed ${s.seed} --only ${f.index}${f.savedAs ? ` (saved as test/corpus/${f.savedAs})` : ''}`);
  }
  if (s.failures.length > 50) out(`  … and ${s.failures.length - 50} more`);
  return 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`fuzz: internal error: ${(e as Error)?.stack ?? String(e)}\n`);
    process.exitCode = 70;
  },
);
