import { generators } from '../corpus/generate';
import { runCase } from './harness';
async function main() {
  for (const [name, make] of Object.entries(generators)) {
    const bytes = make();
    const out = await runCase({ bytes, path: '/dev/shm/corpus-' + name, timeLimitMs: 20000 });
    console.log(name.padEnd(42), String(bytes.length).padStart(9), JSON.stringify(out).slice(0, 300));
  }
}
void main();
