"""The script a user would otherwise write: load each shard, W' = W + (alpha/r)·B@A in fp32, save fp16.
Used only by `npm run bench` as the comparison point when /usr/bin/python3 has torch; the product never runs Python."""
import json, struct, sys, os
import torch

def load(path):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop('__metadata__', None)
    dt = {'F16': torch.float16, 'F32': torch.float32, 'BF16': torch.bfloat16}
    out = {}
    for k, v in header.items():
        b, e = v['data_offsets']
        out[k] = torch.frombuffer(bytearray(data[b:e]), dtype=dt[v['dtype']]).reshape(v['shape'])
    return out, meta

def save(path, tensors, meta):
    names = {torch.float16: 'F16', torch.float32: 'F32', torch.bfloat16: 'BF16'}
    header, off, blobs = {'__metadata__': meta or {}}, 0, []
    for k, t in tensors.items():
        b = t.contiguous().numpy().tobytes() if t.dtype != torch.bfloat16 else t.view(torch.int16).numpy().tobytes()
        header[k] = {'dtype': names[t.dtype], 'shape': list(t.shape), 'data_offsets': [off, off + len(b)]}
        off += len(b); blobs.append(b)
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h))); f.write(h)
        for b in blobs: f.write(b)

base, adapter, out = sys.argv[1:4]
cfg = json.load(open(os.path.join(adapter, 'adapter_config.json')))
s = cfg['lora_alpha'] / cfg['r']
lora, _ = load(os.path.join(adapter, 'adapter_model.safetensors'))
index = json.load(open(os.path.join(base, 'model.safetensors.index.json')))
os.makedirs(out, exist_ok=True)
for shard in sorted(set(index['weight_map'].values())):
    ts, meta = load(os.path.join(base, shard))
    for k in list(ts):
        a = 'base_model.model.' + k[:-len('.weight')] + '.lora_A.weight'
        if a in lora:
            B = lora[a.replace('lora_A', 'lora_B')]
            ts[k] = (ts[k].float() + s * (B @ lora[a])).half()
    save(os.path.join(out, shard), ts, meta)
json.dump(index, open(os.path.join(out, 'model.safetensors.index.json'), 'w'))
