import { ioError, isLoraLensError, type LoraLensError } from '../errors';

const CODES: Record<string, [code: string, detail: string]> = {
  ENOENT: ['NotFound', 'no such file or folder'],
  EACCES: ['PermissionDenied', 'permission denied'],
  EPERM: ['PermissionDenied', 'operation not permitted'],
  EISDIR: ['IsDirectory', 'is a folder, not a file'],
  ENOTDIR: ['NotFound', 'a part of the path is not a folder'],
  ENOSPC: ['DiskFull', 'no space left on the device'],
  EFBIG: ['FileTooLarge', 'the file grew beyond what the file system or the process file-size limit (ulimit -f) allows'],
  EDQUOT: ['DiskFull', 'disk quota exceeded'],
  EROFS: ['ReadOnlyFileSystem', 'the file system is read-only'],
  EMFILE: ['TooManyOpenFiles', 'too many open files'],
  EXDEV: ['CrossDevice', 'cannot rename across file systems'],
};

/** Node's fs errors as LoraLensErrors naming the file; LoraLensErrors pass through untouched. */
export function fsError(e: unknown, path: string): LoraLensError {
  if (isLoraLensError(e)) return e.withFile(path);
  const errno = (e as NodeJS.ErrnoException | undefined)?.code;
  const known = errno ? CODES[errno] : undefined;
  if (known) return ioError(known[0], known[1], path);
  const msg = e instanceof Error ? e.message : String(e);
  return ioError('IoFailed', msg, path);
}
