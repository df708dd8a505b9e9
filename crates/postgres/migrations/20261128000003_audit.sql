-- The audit log: one row per change, written in the transaction of the change, and one per
-- refused management request. The entry is kept whole as JSON; the columns it is filtered
-- and ordered by are kept beside it.
CREATE TABLE tollgate_audit (
    id        bytea       PRIMARY KEY CHECK (length(id) = 16),
    at        timestamptz NOT NULL,
    actor_id  text        NOT NULL,
    action    text        NOT NULL,
    token_id  bytea,
    owner     text,
    entry     jsonb       NOT NULL
);

CREATE INDEX tollgate_audit_at ON tollgate_audit (at DESC, id DESC);
CREATE INDEX tollgate_audit_token ON tollgate_audit (token_id, at DESC, id DESC)
    WHERE token_id IS NOT NULL;
