-- One step transition, as one durable transaction: move a case on (optimistic version bump,
-- new state and data) and append a hash-chained history event carrying the step's result.
-- pgbench -n -M prepared -f step.sql -D ncases=N (tables from schema.sql). The history time (RFC
-- 3339 text, as in wf) and JSON are built without a colon: pgbench reads colon-words as variables.
\set c random(1, :ncases)
BEGIN;
UPDATE bench_cases
   SET row_version = row_version + 1,
       updated_at = (extract(epoch FROM clock_timestamp()) * 1e6)::bigint,
       state = jsonb_set(state, '{activation}', to_jsonb(row_version + 1)),
       data = jsonb_set(data, '{last}', jsonb_build_object('operation', 'step', 'ok', true))
 WHERE id = 'case-' || :c::text
RETURNING row_version AS seq \gset
INSERT INTO bench_history (case_id, seq, at, actor, action, step, details, prev_hash, hash)
VALUES ('case-' || :c::text, :seq::bigint,
        btrim(to_json(clock_timestamp() AT TIME ZONE 'UTC')::text, '"') || 'Z',
        'engine', 'step.succeeded', 's' || :seq::text,
        json_build_object('activation', :seq::bigint,
                          'result', json_build_object('operation', 'step', 'ok', true))::text,
        md5('case-' || :c::text || '/' || :seq::text),
        encode(sha256(('case-' || :c::text || '/' || :seq::text)::bytea), 'hex'));
END;
