/**
 * Imported by every file with property tests: fast-check runs from a fixed seed, so a failure
 * is reproduced by the next run (and CI shows the same cases). `FC_SEED=<n>` explores others.
 */
import fc from 'fast-check';

export const FC_SEED = Number(process.env.FC_SEED ?? 20_261_202);
fc.configureGlobal({ ...fc.readConfigureGlobal(), seed: FC_SEED });
