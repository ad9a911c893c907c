/** Where an adapter's weights and config live, given what the user named (a folder or a weights file). */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { inputError, ioError } from '../errors';

export interface AdapterFiles {
  path: string;
  weightsPath: string;
  configPath: string | null;
}

const PREFERRED_WEIGHTS = [
  'adapter_model.safetensors', 'adapter_model.bin',
  'pytorch_lora_weights.safetensors', 'pytorch_lora_weights.bin',
];
const CONFIG_NAMES = ['adapter_config.json', 'lora_config.json'];
const WEIGHTS_EXT = /\.(safetensors|bin|pt|pth|ckpt)$/i;

export function findConfigBeside(folder: string): string | null {
  for (const n of CONFIG_NAMES) {
    const p = join(folder, n);
    if (existsSync(p)) return p;
  }
  return null;
}

export function resolveAdapterFiles(path: string, configPath?: string): AdapterFiles {
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    throw ioError('NotFound', `cannot open: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or folder' : (e as Error).message}`, path);
  }
  let weightsPath: string;
  let folder: string;
  if (st.isDirectory()) {
    folder = path;
    const names = readdirSync(path).sort();
    const preferred = PREFERRED_WEIGHTS.find((n) => names.includes(n));
    if (preferred) weightsPath = join(path, preferred);
    else {
      const index = names.filter((n) => n.endsWith('.safetensors.index.json'));
      const weights = names.filter((n) => WEIGHTS_EXT.test(n));
      if (index.length === 1) weightsPath = join(path, index[0]!);
      else if (weights.length === 1) weightsPath = join(path, weights[0]!);
      else if (weights.length === 0) throw inputError('NoAdapterWeights', 'the folder holds no adapter weights (adapter_model.safetensors/.bin or another .safetensors/.pt/.bin file)', path);
      else throw inputError('AmbiguousFolder', `the folder holds several weight files (${weights.join(', ')}); name the adapter file`, path);
    }
  } else {
    folder = dirname(path);
    weightsPath = path;
  }
  if (configPath !== undefined && !existsSync(configPath)) throw ioError('NotFound', 'config file not found', configPath);
  return { path, weightsPath, configPath: configPath ?? findConfigBeside(folder) };
}
