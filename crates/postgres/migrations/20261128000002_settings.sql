-- Settings kept with the tokens, such as the prefix the store's tokens are issued with.
CREATE TABLE tollgate_settings (
    key   text PRIMARY KEY,
    value text NOT NULL
);
