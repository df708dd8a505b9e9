-- Tollgate token store, schema version 1.
-- Extensions live in `public` so that stores in other schemas share them.
CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;
CREATE EXTENSION IF NOT EXISTS fuzzystrmatch WITH SCHEMA public;

CREATE TABLE tollgate_tokens (
    id                   bytea       PRIMARY KEY CHECK (length(id) = 16),
    owner                text        NOT NULL,
    name                 text        NOT NULL,
    -- NFKC + lower case, computed by the application: names are unique per owner by it.
    name_key             text        NOT NULL,
    -- The name as the fuzzy matcher splits it, for search in the database.
    name_compact         text        NOT NULL,
    name_words           text[]      NOT NULL,
    description          text        NOT NULL,
    scopes               text[]      NOT NULL,
    enabled              boolean     NOT NULL,
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL,
    expires_at           timestamptz,
    last_used_at         timestamptz,
    -- SHA-256 (or HMAC-SHA-256) of the token: never the token itself.
    secret_hash          bytea       NOT NULL CHECK (length(secret_hash) = 32),
    previous_hash        bytea       CHECK (length(previous_hash) = 32),
    previous_valid_until timestamptz,
    sealed_secret        bytea,
    version              bigint      NOT NULL
);

CREATE UNIQUE INDEX tollgate_tokens_owner_name ON tollgate_tokens (owner, name_key);
CREATE UNIQUE INDEX tollgate_tokens_secret_hash ON tollgate_tokens (secret_hash);
CREATE UNIQUE INDEX tollgate_tokens_previous_hash ON tollgate_tokens (previous_hash)
    WHERE previous_hash IS NOT NULL;
CREATE INDEX tollgate_tokens_owner_created ON tollgate_tokens (owner, created_at DESC, id DESC);
CREATE INDEX tollgate_tokens_name_trgm ON tollgate_tokens
    USING gin (name_compact public.gin_trgm_ops);

-- Whether a name (its compact form and words) may match one query word: the word is a
-- subsequence of the compact name (covers exact, prefix, whole-word, substring and
-- abbreviation matches), or within twice the typo budget of a name word, the compact name,
-- or the start of either, in Levenshtein distance (a transposition costs 2 there, 1 in the matcher). A superset of
-- what the application's matcher accepts; the application ranks the candidates.
CREATE FUNCTION tollgate_word_candidate(compact text, words text[], word text, budget int)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT compact LIKE '%' || array_to_string(regexp_split_to_array(word, ''), '%') || '%'
        OR (budget > 0 AND EXISTS (
            SELECT 1 FROM unnest(words || compact) AS w
            WHERE public.levenshtein_less_equal(word, w, 2 * budget) <= 2 * budget
               OR public.levenshtein_less_equal(word, left(w, length(word)), 2 * budget) <= 2 * budget
        ))
$$;
