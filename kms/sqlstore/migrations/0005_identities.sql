-- 0005: identities. Accounts, IAM users and roles, their tags and inline
-- identity policies, and temporary sessions. Secrets are sealed under an
-- internal KMS key (kms/secrets.go), so no new key table is needed.
--
-- Timestamps are INTEGER milliseconds since the Unix epoch (see 0001).

CREATE TABLE accounts (
    id         TEXT NOT NULL PRIMARY KEY CHECK (length(id) = 12),
    name       TEXT NOT NULL DEFAULT '',
    created_at INTEGER
);

-- Users and roles. IAM compares names case-insensitively within an
-- account and kind, hence the NOCASE unique index; the ARN keeps the case
-- the name was created with.
CREATE TABLE principals (
    arn                 TEXT    NOT NULL PRIMARY KEY,
    account_id          TEXT    NOT NULL REFERENCES accounts (id),
    kind                TEXT    NOT NULL CHECK (kind IN ('user', 'role')),
    name                TEXT    NOT NULL CHECK (name <> ''),
    unique_id           TEXT    NOT NULL UNIQUE,
    trust_policy        TEXT    NOT NULL DEFAULT '',
    max_session_seconds INTEGER NOT NULL DEFAULT 3600,
    created_at          INTEGER
);
CREATE UNIQUE INDEX principals_name ON principals (account_id, kind, name COLLATE NOCASE);

CREATE TABLE principal_tags (
    principal_arn TEXT NOT NULL REFERENCES principals (arn) ON DELETE CASCADE,
    tag_key       TEXT NOT NULL,
    value         TEXT NOT NULL,
    PRIMARY KEY (principal_arn, tag_key)
) WITHOUT ROWID;

CREATE TABLE identity_policies (
    principal_arn TEXT NOT NULL REFERENCES principals (arn) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    document      TEXT NOT NULL,
    updated_at    INTEGER,
    PRIMARY KEY (principal_arn, name)
) WITHOUT ROWID;

-- Secret access keys are sealed: sealed_secret is a ciphertext blob of the
-- internal key for secrets (kms/secrets.go). The plain-text
-- "secret" column of 0001 cannot be dropped without rebuilding the table;
-- kmsd seals every plain secret at start-up and sets the column to ''.
ALTER TABLE access_keys ADD COLUMN sealed_secret BLOB;
CREATE INDEX access_keys_principal ON access_keys (principal_arn, id);

-- Temporary credentials from AssumeRole. The session token is never
-- stored, only its SHA-256.
CREATE TABLE sessions (
    access_key_id TEXT    NOT NULL PRIMARY KEY,
    sealed_secret BLOB    NOT NULL,
    token_hash    BLOB    NOT NULL CHECK (length(token_hash) = 32),
    account_id    TEXT    NOT NULL,
    role_arn      TEXT    NOT NULL REFERENCES principals (arn) ON DELETE CASCADE,
    session_name  TEXT    NOT NULL,
    source_arn    TEXT    NOT NULL DEFAULT '',
    expiration    INTEGER NOT NULL,
    created_at    INTEGER
);
CREATE INDEX sessions_expiration ON sessions (expiration);
