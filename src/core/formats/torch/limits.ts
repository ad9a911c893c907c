/**
 * Size limits for torch files. data.pkl holds metadata only (about 100 bytes per tensor), so 256 MiB allows
 * millions of tensors while refusing a pickle that claims to be huge before we allocate for it.
 */
export const MAX_PICKLE_BYTES = 256 << 20;
/** Compressed (deflated) storages are inflated whole in memory; real torch archives never compress them. */
export const MAX_INFLATED_STORAGE = 256 << 20;
/** The `byteorder` entry is "little" or "big". */
export const MAX_BYTEORDER_BYTES = 16;
