#if Postgres
    import CallQueue

    /// The database side of cluster-wide groups: tables and functions in a schema of their own, made by a
    /// versioned, idempotent migration.
    ///
    /// - One row per group in `cq_group`, locked (`FOR UPDATE`) by every change to that group's line: tickets
    ///   take their ids while it is held, so id order is arrival order.
    /// - A ticket is waiting while its `slot` is null; a holder has a slot and a fencing number. The partial
    ///   unique index on (group, slot) refuses a second holder of a slot, whatever a client does.
    /// - Liveness is a lease per replica session, judged by the database's clock only; an expired session's
    ///   tickets are deleted and their slots granted to the next waiters.
    /// - Grants are announced on the holder session's channel (`cq_<session hex>`: `g <ticket> <slot> <fence>`),
    ///   every change to a line (enqueue, grant, release, reap) on the schema's channel (`cqm_<schema>`: the
    ///   group's name), cancels from other replicas on the session's channel (`c <ticket>`).
    enum Schema {
        /// The version this library writes and understands.
        ///
        /// - 1: tables, indexes and the first functions.
        /// - 2: a ticket records the replica's request number (an enqueue whose reply was lost is found by it);
        ///   a group counts its waiting tickets (no scan of the line under the group's lock); the restart check
        ///   runs before every change to a line; lock waits inside the functions are bounded
        ///   (``functionLockTimeout``). Version 1's function signatures stay, so replicas of the older version
        ///   keep working through a rolling upgrade.
        static let version = 2

        /// How long a function of the schema waits for a group's row lock before it fails (SQLSTATE 55P03): a
        /// client that holds the lock cannot stall every replica's enqueues, whatever its connection settings.
        static let functionLockTimeout = "5s"

        /// Checks a schema name: a plain lower-case identifier, so it can stand in SQL unquoted.
        static func validated(_ name: String) throws -> String {
            let scalars = name.unicodeScalars
            let isValid =
                !scalars.isEmpty && scalars.count <= 40
                && scalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }
                && !("0"..."9").contains(scalars.first!)
            guard isValid else {
                throw CallQueueError(
                    .invalidArgument,
                    "schema name '\(name)' must be 1 to 40 characters of a-z, 0-9 and _, not starting with a digit")
            }
            return name
        }

        /// The channel on which the schema's groups announce that their lines moved.
        static func movedChannel(_ schema: String) -> String { "cqm_\(schema)" }

        /// The channel on which a session hears its grants and cancels.
        static func sessionChannel(_ session: String) -> String {
            "cq_" + session.lowercased().replacingOccurrences(of: "-", with: "")
        }

        /// Takes the migration lock for the schema; the statements below then run in the same transaction.
        static func lockStatement(_ s: String) -> String {
            "SELECT pg_advisory_xact_lock(hashtext('call_queue.migrate.\(s)'))"
        }

        /// Makes the schema and its version table; then the version stored tells what to do.
        static func preludeStatements(_ s: String) -> [String] {
            [
                "CREATE SCHEMA IF NOT EXISTS \(s)",
                "CREATE TABLE IF NOT EXISTS \(s).cq_version (version int NOT NULL)",
            ]
        }

        /// Version 1's tables, from nothing.
        static func version1Statements(_ s: String) -> [String] {
            [
                """
                CREATE TABLE \(s).cq_group (
                  name text PRIMARY KEY,
                  slots int NOT NULL CHECK (slots BETWEEN 1 AND 4096),
                  hold_ms double precision)
                """,
                "CREATE TABLE \(s).cq_session (id uuid PRIMARY KEY, replica text NOT NULL, lease_until timestamptz NOT NULL)",
                "CREATE INDEX cq_session_expiry ON \(s).cq_session (lease_until)",
                """
                CREATE TABLE \(s).cq_ticket (
                  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                  grp text NOT NULL REFERENCES \(s).cq_group (name),
                  session uuid NOT NULL REFERENCES \(s).cq_session (id) ON DELETE CASCADE,
                  task text,
                  slot int CHECK (slot >= 0),
                  fence bigint,
                  enqueued_at timestamptz NOT NULL DEFAULT now(),
                  granted_at timestamptz,
                  CHECK ((slot IS NULL) = (fence IS NULL)))
                """,
                "CREATE INDEX cq_waiting ON \(s).cq_ticket (grp, id) WHERE slot IS NULL",
                "CREATE UNIQUE INDEX cq_holding ON \(s).cq_ticket (grp, slot) WHERE slot IS NOT NULL",
                "CREATE INDEX cq_by_session ON \(s).cq_ticket (session)",
                "CREATE INDEX cq_by_task ON \(s).cq_ticket (task)",
                "CREATE SEQUENCE \(s).cq_fence",
                "CREATE TABLE \(s).cq_done (task text PRIMARY KEY, status text NOT NULL, finished_at timestamptz NOT NULL)",
                "CREATE INDEX cq_done_age ON \(s).cq_done (finished_at)",
                "CREATE TABLE \(s).cq_meta (one bool PRIMARY KEY DEFAULT true CHECK (one), boot timestamptz)",
                "INSERT INTO \(s).cq_meta VALUES (true, pg_postmaster_start_time())",
            ]
        }

        /// Version 2's changes to version 1's tables: the request number, the waiting count (made right once).
        static func version2Statements(_ s: String) -> [String] {
            [
                "ALTER TABLE \(s).cq_ticket ADD COLUMN req bigint",
                "ALTER TABLE \(s).cq_group ADD COLUMN waiting int NOT NULL DEFAULT 0",
                """
                UPDATE \(s).cq_group g SET waiting =
                  (SELECT count(*) FROM \(s).cq_ticket t WHERE t.grp = g.name AND t.slot IS NULL)
                """,
            ]
        }

        /// The functions of the current version, made or replaced after every migration step (each keeps its
        /// signature across versions; a new signature is a new overload).
        static func functionStatements(_ s: String) -> [String] {
            let moved = movedChannel(s)
            let bounded = "SET lock_timeout = '\(functionLockTimeout)'"
            return [
                // A server restart or failover gives every session one more grace period, so replicas that could
                // not renew during the outage keep their tickets (a longer lease only delays reclaiming).
                """
                CREATE OR REPLACE FUNCTION \(s).cq_boot_check(grace interval) RETURNS void LANGUAGE plpgsql AS $$
                DECLARE st timestamptz := pg_postmaster_start_time();
                BEGIN
                  UPDATE \(s).cq_meta SET boot = st WHERE boot IS DISTINCT FROM st;
                  IF FOUND THEN
                    UPDATE \(s).cq_session SET lease_until = greatest(lease_until, now()) + grace;
                  END IF;
                END $$
                """,
                // Drops the tickets of expired sessions and grants free slots to the oldest waiting tickets; keeps
                // the group's waiting count. The caller holds the group's row lock. Its work grows with the
                // slots and the expired tickets, not with the line: the oldest waiters come from the index.
                """
                CREATE OR REPLACE FUNCTION \(s).cq_advance(g text) RETURNS int LANGUAGE plpgsql AS $$
                DECLARE n int; avail int; granted int := 0; dropped int; r record;
                BEGIN
                  WITH gone AS (
                    DELETE FROM \(s).cq_ticket t
                     WHERE t.grp = g AND t.session IN (SELECT x.id FROM \(s).cq_session x WHERE x.lease_until <= now())
                    RETURNING t.slot)
                  SELECT count(*) FILTER (WHERE gone.slot IS NULL) INTO dropped FROM gone;
                  SELECT slots INTO n FROM \(s).cq_group WHERE name = g;
                  SELECT n - count(*) INTO avail FROM \(s).cq_ticket WHERE grp = g AND slot IS NOT NULL;
                  IF avail > 0 THEN
                    FOR r IN
                      WITH free AS (
                        SELECT f AS slot, row_number() OVER (ORDER BY f) AS rn
                          FROM generate_series(0, n - 1) f
                         WHERE NOT EXISTS (SELECT 1 FROM \(s).cq_ticket h WHERE h.grp = g AND h.slot = f)
                         ORDER BY f LIMIT avail),
                      nextw AS (
                        SELECT w.id, row_number() OVER (ORDER BY w.id) AS rn
                          FROM (SELECT id FROM \(s).cq_ticket WHERE grp = g AND slot IS NULL
                                 ORDER BY id LIMIT avail) w)
                      UPDATE \(s).cq_ticket t
                         SET slot = f.slot, fence = nextval('\(s).cq_fence'), granted_at = now()
                        FROM nextw JOIN free f USING (rn)
                       WHERE t.id = nextw.id
                      RETURNING t.id, t.session, t.slot, t.fence
                    LOOP
                      PERFORM pg_notify('cq_' || replace(r.session::text, '-', ''),
                                        format('g %s %s %s', r.id, r.slot, r.fence));
                      granted := granted + 1;
                    END LOOP;
                  END IF;
                  IF dropped + granted > 0 THEN
                    UPDATE \(s).cq_group SET waiting = waiting - dropped - granted WHERE name = g;
                  END IF;
                  RETURN granted;
                END $$
                """,
                // Takes a place at the end of the line: the new ticket's id is the group's largest, so the
                // tickets ahead of it are the group's waiting count less one.
                """
                CREATE OR REPLACE FUNCTION \(s).cq_enqueue(g text, sess uuid, tsk text, grace interval, rq bigint,
                    OUT ticket bigint, OUT slot int, OUT fence bigint, OUT ahead bigint, OUT waiting bigint)
                LANGUAGE plpgsql \(bounded) AS $$
                BEGIN
                  PERFORM \(s).cq_boot_check(grace);
                  PERFORM 1 FROM \(s).cq_group WHERE name = g FOR UPDATE;
                  IF NOT FOUND THEN RAISE EXCEPTION 'call_queue: unknown group %', g USING ERRCODE = 'P0002'; END IF;
                  INSERT INTO \(s).cq_ticket (grp, session, task, req)
                       SELECT g, x.id, tsk, rq FROM \(s).cq_session x WHERE x.id = sess AND x.lease_until > now()
                    RETURNING id INTO ticket;
                  IF ticket IS NULL THEN RAISE EXCEPTION 'call_queue: session lost' USING ERRCODE = 'P0001'; END IF;
                  UPDATE \(s).cq_group gr SET waiting = gr.waiting + 1 WHERE gr.name = g;
                  PERFORM \(s).cq_advance(g);
                  SELECT t.slot, t.fence INTO slot, fence FROM \(s).cq_ticket t WHERE t.id = ticket;
                  SELECT gr.waiting INTO waiting FROM \(s).cq_group gr WHERE gr.name = g;
                  ahead := CASE WHEN slot IS NULL THEN waiting - 1 ELSE 0 END;
                  PERFORM pg_notify('\(moved)', g);
                END $$
                """,
                """
                CREATE OR REPLACE FUNCTION \(s).cq_enqueue(g text, sess uuid, tsk text, grace interval,
                    OUT ticket bigint, OUT slot int, OUT fence bigint, OUT ahead bigint, OUT waiting bigint)
                LANGUAGE sql AS $$ SELECT * FROM \(s).cq_enqueue(g, sess, tsk, grace, NULL) $$
                """,
                // Leaving the line and giving a slot back are one call; false: the ticket was already gone.
                """
                CREATE OR REPLACE FUNCTION \(s).cq_leave(tk bigint, sess uuid, done text, timed boolean, grace interval)
                RETURNS boolean LANGUAGE plpgsql \(bounded) AS $$
                DECLARE g text; held_ms double precision; tsk text; was_slot int;
                BEGIN
                  PERFORM \(s).cq_boot_check(grace);
                  SELECT grp INTO g FROM \(s).cq_ticket WHERE id = tk AND session = sess;
                  IF g IS NULL THEN RETURN false; END IF;
                  PERFORM 1 FROM \(s).cq_group WHERE name = g FOR UPDATE;
                  DELETE FROM \(s).cq_ticket WHERE id = tk AND session = sess
                    RETURNING extract(epoch FROM now() - granted_at) * 1000, task, slot INTO held_ms, tsk, was_slot;
                  IF NOT FOUND THEN RETURN false; END IF;
                  IF was_slot IS NULL THEN
                    UPDATE \(s).cq_group SET waiting = waiting - 1 WHERE name = g;
                  END IF;
                  IF held_ms IS NOT NULL AND timed THEN
                    UPDATE \(s).cq_group SET hold_ms = coalesce(hold_ms * 0.8 + held_ms * 0.2, held_ms) WHERE name = g;
                  END IF;
                  IF done IS NOT NULL AND tsk IS NOT NULL THEN
                    INSERT INTO \(s).cq_done VALUES (tsk, done, now())
                      ON CONFLICT (task) DO UPDATE SET status = excluded.status, finished_at = excluded.finished_at;
                  END IF;
                  PERFORM \(s).cq_advance(g);
                  PERFORM pg_notify('\(moved)', g);
                  RETURN true;
                END $$
                """,
                """
                CREATE OR REPLACE FUNCTION \(s).cq_leave(tk bigint, sess uuid, done text, timed boolean)
                RETURNS boolean LANGUAGE sql AS $$ SELECT \(s).cq_leave(tk, sess, done, timed, interval '30 seconds') $$
                """,
                // Renews the lease and returns every ticket of the session with its request number: also the
                // fallback poll for grants, and how a ticket whose enqueue reply was lost is found.
                """
                CREATE OR REPLACE FUNCTION \(s).cq_beat(sess uuid, lease interval, grace interval)
                RETURNS TABLE (ticket bigint, grp text, slot int, fence bigint, req bigint) LANGUAGE plpgsql AS $$
                BEGIN
                  PERFORM \(s).cq_boot_check(grace);
                  UPDATE \(s).cq_session SET lease_until = now() + lease WHERE id = sess AND lease_until > now();
                  IF NOT FOUND THEN RAISE EXCEPTION 'call_queue: session lost' USING ERRCODE = 'P0001'; END IF;
                  RETURN QUERY SELECT t.id, t.grp, t.slot, t.fence, t.req FROM \(s).cq_ticket t WHERE t.session = sess;
                END $$
                """,
                """
                CREATE OR REPLACE FUNCTION \(s).cq_heartbeat(sess uuid, lease interval, grace interval)
                RETURNS TABLE (ticket bigint, grp text, slot int, fence bigint) LANGUAGE sql AS $$
                  SELECT b.ticket, b.grp, b.slot, b.fence FROM \(s).cq_beat(sess, lease, grace) b
                $$
                """,
                // Deletes the tickets of expired sessions and grants their slots (groups locked in name order), and
                // final statuses older than `keep`.
                """
                CREATE OR REPLACE FUNCTION \(s).cq_reap(grace interval, keep interval)
                RETURNS int LANGUAGE plpgsql \(bounded) AS $$
                DECLARE g text; total int := 0;
                BEGIN
                  PERFORM \(s).cq_boot_check(grace);
                  FOR g IN SELECT DISTINCT t.grp FROM \(s).cq_ticket t JOIN \(s).cq_session x ON x.id = t.session
                            WHERE x.lease_until <= now() ORDER BY 1 LOOP
                    PERFORM 1 FROM \(s).cq_group WHERE name = g FOR UPDATE;
                    total := total + \(s).cq_advance(g);
                    PERFORM pg_notify('\(moved)', g);
                  END LOOP;
                  DELETE FROM \(s).cq_session WHERE lease_until <= now() - interval '1 minute';
                  DELETE FROM \(s).cq_done WHERE finished_at < now() - keep;
                  RETURN total;
                END $$
                """,
                """
                CREATE OR REPLACE FUNCTION \(s).cq_reap(grace interval) RETURNS int LANGUAGE sql AS $$
                  SELECT \(s).cq_reap(grace, interval '10 minutes')
                $$
                """,
                // A cancel by task id from any replica: the holder's replica hears it on its session's channel.
                """
                CREATE OR REPLACE FUNCTION \(s).cq_cancel(tsk text) RETURNS boolean LANGUAGE plpgsql AS $$
                DECLARE r record;
                BEGIN
                  SELECT id, session INTO r FROM \(s).cq_ticket WHERE task = tsk ORDER BY id DESC LIMIT 1;
                  IF NOT FOUND THEN RETURN false; END IF;
                  PERFORM pg_notify('cq_' || replace(r.session::text, '-', ''), format('c %s', r.id));
                  RETURN true;
                END $$
                """,
                // Declares a group or changes its slots; more slots are granted at once, fewer are honoured as
                // holders leave.
                """
                CREATE OR REPLACE FUNCTION \(s).cq_configure(g text, n int, grace interval)
                RETURNS void LANGUAGE plpgsql \(bounded) AS $$
                BEGIN
                  PERFORM \(s).cq_boot_check(grace);
                  INSERT INTO \(s).cq_group (name, slots) VALUES (g, n)
                    ON CONFLICT (name) DO UPDATE SET slots = excluded.slots;
                  PERFORM 1 FROM \(s).cq_group WHERE name = g FOR UPDATE;
                  PERFORM \(s).cq_advance(g);
                END $$
                """,
                """
                CREATE OR REPLACE FUNCTION \(s).cq_configure(g text, n int) RETURNS void LANGUAGE sql AS $$
                  SELECT \(s).cq_configure(g, n, interval '30 seconds')
                $$
                """,
            ]
        }
    }
#endif
