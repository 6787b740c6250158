/**
 * Imported by every file with property tests: fast-check runs from a fixed seed, so a failure
 * is reproduced by the next run (and CI shows the same cases). `FC_SEED=<n>` explores others.
 * `FC_END_ON_FAILURE=1` (set by `npm run mutate`) reports the first failing case without
 * shrinking it: a mutant only needs the failure, and shrinking one can take minutes.
 */
import fc from 'fast-check';

export const FC_SEED = Number(process.env.FC_SEED ?? 20_261_202);
fc.configureGlobal({
  ...fc.readConfigureGlobal(),
  seed: FC_SEED,
  ...(process.env.FC_END_ON_FAILURE === '1' ? { endOnFailure: true } : {}),
});
