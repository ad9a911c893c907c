export { gramCols, gramRows, matmul, transpose64, traceOfProduct } from './dense';
export { householderR } from './qr';
export { symmetricEigen, jacobiSvd } from './jacobi';
export type { SymEig, Svd } from './jacobi';
export { lowRankStats, lowRankFrobenius2, lowRankSingularValues, effectiveRankOf } from './lowrank';
export type { LowRankStats } from './lowrank';
