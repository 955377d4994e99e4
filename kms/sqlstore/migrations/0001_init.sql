-- 0001: the initial schema.
--
-- Timestamps are INTEGER milliseconds since the Unix epoch, UTC; NULL stands
-- for the zero time.Time. Integers sort and compare correctly, which RFC 3339
-- text would only do while every value has the same width.
--
-- Keys are never deleted (a deleted key is a tombstone with state 'Deleted'),
-- so versions reference keys with the default RESTRICT: a version row is what
-- proves a token object may still exist, and nothing may drop it by cascade.

CREATE TABLE keys (
    id                  TEXT    NOT NULL PRIMARY KEY,
    account_id          TEXT    NOT NULL,
    description         TEXT    NOT NULL DEFAULT '',
    key_usage           TEXT    NOT NULL DEFAULT '',
    key_spec            TEXT    NOT NULL DEFAULT '',
    origin              TEXT    NOT NULL DEFAULT '',
    key_manager         TEXT    NOT NULL DEFAULT '',
    state               TEXT    NOT NULL CHECK (state <> ''),
    created_at          INTEGER,
    deletion_date       INTEGER,
    pending_window_days INTEGER NOT NULL DEFAULT 0,
    current_version     INTEGER NOT NULL DEFAULT 0 CHECK (current_version >= 0)
);

-- ListKeys: WHERE account_id = ? AND id > ? ORDER BY id.
CREATE INDEX keys_account_id ON keys (account_id, id);
-- KeysByState (the reconciler and the deletion sweeper).
CREATE INDEX keys_state ON keys (state);

CREATE TABLE key_versions (
    key_id     TEXT    NOT NULL REFERENCES keys (id),
    version    INTEGER NOT NULL CHECK (version >= 1),
    -- CKA_ID of the token object. UNIQUE across all keys: two versions
    -- sharing one object would let destroying one destroy the other.
    backing_id BLOB    NOT NULL UNIQUE CHECK (length(backing_id) > 0),
    state      TEXT    NOT NULL CHECK (state <> ''),
    created_at INTEGER,
    -- AES-GCM invocations reserved so far; only grows (see ReserveInvocations).
    reserved   INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    PRIMARY KEY (key_id, version)
) WITHOUT ROWID;

-- VersionsByState (the reconciler).
CREATE INDEX key_versions_state ON key_versions (state);

CREATE TABLE aliases (
    account_id TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    key_id     TEXT    NOT NULL REFERENCES keys (id) ON DELETE CASCADE,
    created_at INTEGER,
    updated_at INTEGER,
    PRIMARY KEY (account_id, name)
) WITHOUT ROWID;

-- CountAliases / DeleteAliasesForKey (key_id) and ListAliases with a key
-- filter (key_id, account_id, name > ? ORDER BY name).
CREATE INDEX aliases_key ON aliases (key_id, account_id, name);

CREATE TABLE tags (
    key_id  TEXT NOT NULL REFERENCES keys (id) ON DELETE CASCADE,
    tag_key TEXT NOT NULL,
    value   TEXT NOT NULL,
    PRIMARY KEY (key_id, tag_key)
) WITHOUT ROWID;

-- SECURITY: secret is the SigV4 secret in plain text for now. A later
-- migration replaces it with a ciphertext made under an HSM-resident key
-- (DESIGN.md, "Metadata"); until then protect the database file and its
-- backups like the secrets themselves.
CREATE TABLE access_keys (
    id            TEXT    NOT NULL PRIMARY KEY,
    secret        TEXT    NOT NULL,
    account_id    TEXT    NOT NULL,
    principal_arn TEXT    NOT NULL,
    active        INTEGER NOT NULL CHECK (active IN (0, 1)),
    created_at    INTEGER
);

CREATE TABLE settings (
    name  TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
);
