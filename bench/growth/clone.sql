-- Fills the growth benchmark's store: clones g<lo>..g<hi> of one real case (:'seed', started by
-- `wf start` and moved by `wf engine` to its review task) with its tasks, history and done work.
-- Nine clones in ten are completed, with their task completed in the seed's agency; one in ten is
-- open, with its task open in one of 100 other agencies, so the clerk's own inbox keeps the seed
-- cases' 20 tasks while the open-task index grows with the store. The clones' history rows are
-- copies: `wf audit verify` fails on them by design (their hashes name the seed's chain).
-- psql -v seed=ID -v lo=N -v hi=M -f clone.sql
BEGIN;
INSERT INTO cases (id, procedure, version, status, data, state, dedupe_key, agency, started_by,
                   started_at, updated_at, deadline_at, clock_paused_at, row_version, parent_case,
                   parent_activation, ended_at)
SELECT 'g' || lpad(i::text, 8, '0'), c.procedure, c.version,
       CASE WHEN i % 10 = 0 THEN 'open' ELSE 'completed' END,
       jsonb_set(c.data, '{id}', to_jsonb('g' || i)), c.state, NULL, c.agency, c.started_by,
       c.started_at - i * 1000, c.updated_at - i * 1000, c.deadline_at, c.clock_paused_at,
       c.row_version, NULL, NULL, CASE WHEN i % 10 = 0 THEN NULL ELSE c.updated_at END
  FROM cases c, generate_series(:lo, :hi) AS i
 WHERE c.id = :'seed';
INSERT INTO tasks (case_id, activation, step, title, role, agency, form, status, assignee,
                   created_at, due_at, completed_by, completed_at, submitted)
SELECT 'g' || lpad(i::text, 8, '0'), t.activation, t.step, t.title, t.role,
       CASE WHEN i % 10 = 0 THEN 'district-' || (i / 10 % 100) ELSE t.agency END, t.form,
       CASE WHEN i % 10 = 0 THEN 'open' ELSE 'completed' END, NULL,
       t.created_at - i * 1000, t.due_at,
       CASE WHEN i % 10 = 0 THEN NULL ELSE 'an.bench' END,
       CASE WHEN i % 10 = 0 THEN NULL ELSE t.created_at END,
       CASE WHEN i % 10 = 0 THEN NULL ELSE '{"approved": true}'::jsonb END
  FROM tasks t, generate_series(:lo, :hi) AS i
 WHERE t.case_id = :'seed';
INSERT INTO history (case_id, seq, at, actor, action, step, details, prev_hash, hash)
SELECT 'g' || lpad(i::text, 8, '0'), h.seq, h.at, h.actor, h.action, h.step, h.details,
       h.prev_hash, h.hash
  FROM history h, generate_series(:lo, :hi) AS i
 WHERE h.case_id = :'seed';
INSERT INTO work (case_id, kind, step, activation, payload, state, run_at, owner, lease_until,
                  attempt, created_at)
SELECT 'g' || lpad(i::text, 8, '0'), w.kind, w.step, w.activation, w.payload, 'done', w.run_at,
       w.owner, w.lease_until, w.attempt, w.created_at - i * 1000
  FROM work w, generate_series(:lo, :hi) AS i
 WHERE w.case_id = :'seed' AND w.state = 'done';
COMMIT;
