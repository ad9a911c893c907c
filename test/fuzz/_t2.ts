import { Pickle, OP, torchZip, f32Bytes } from '../unit/torch/build';
import { runCase } from './harness';
async function main() {
  for (const depth of [100, 10000, 200000]) {
    const p = new Pickle().proto(2).global('collections', 'OrderedDict').emptyTuple().reduce().mark().str('w');
    p.global('torch._tensor', '_rebuild_from_type_v2').put(1);
    p.mark().global('collections', 'OrderedDict').none().emptyTuple().none().tuple().put(2);
    for (let k = 1; k <= depth; k++) p.mark().get(1).none().get(k + 1).none().tuple().put(k + 2);
    p.get(1).get(depth + 2).reduce();
    const bytes = torchZip({ pickle: p.setitems().stop().bytes(), storages: { '0': f32Bytes([1]) } });
    console.log(depth, bytes.length, await runCase({ bytes, path: '/dev/shm/x.bin' }));
  }
}
void main();
