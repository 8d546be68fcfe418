-- Tables shaped like wf's cases and history (text ids, JSONB data, BIGINT microsecond times,
-- a hash-chained history keyed by case and sequence number), filled with :ncases open cases.
-- Used by bench/run.sh before pgbench runs step.sql; psql -v ncases=N -f schema.sql.
CREATE TABLE bench_cases (
  id TEXT NOT NULL PRIMARY KEY, procedure TEXT NOT NULL, version INTEGER NOT NULL,
  status TEXT NOT NULL, data JSONB NOT NULL, state JSONB NOT NULL,
  started_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, row_version BIGINT NOT NULL);
CREATE TABLE bench_history (
  case_id TEXT NOT NULL REFERENCES bench_cases (id), seq BIGINT NOT NULL, at TEXT NOT NULL,
  actor TEXT NOT NULL, action TEXT NOT NULL, step TEXT NOT NULL DEFAULT '',
  details TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL,
  PRIMARY KEY (case_id, seq));
INSERT INTO bench_cases
SELECT 'case-' || i, 'bench-chain', 1, 'open',
       jsonb_build_object('id', i::text, 'applicant', jsonb_build_object('citizen_id', lpad(i::text, 12, '0'))),
       jsonb_build_object('step', 's1', 'activation', 1),
       (extract(epoch FROM now()) * 1e6)::bigint, (extract(epoch FROM now()) * 1e6)::bigint, 1
FROM generate_series(1, :ncases) AS i;
VACUUM ANALYZE bench_cases;
