-- 0003: key rotation (schedules and history) and imported key material.

-- Automatic rotation of a key. next_rotation_at is also the claim a
-- scheduler matches in a conditional UPDATE, so that of several kmsd
-- processes on one database exactly one rotates a key for one due date.
CREATE TABLE key_rotation_schedules (
    key_id           TEXT    NOT NULL PRIMARY KEY REFERENCES keys (id),
    enabled          INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    period_days      INTEGER NOT NULL DEFAULT 0,
    next_rotation_at INTEGER
);

-- DueRotations: WHERE enabled = 1 AND next_rotation_at <= ?.
CREATE INDEX key_rotation_schedules_due ON key_rotation_schedules (enabled, next_rotation_at);

-- One row per version made by a rotation (version 1 is the key's creation,
-- not a rotation). Written in the same transaction as the version's intent,
-- so a rotation record exists exactly when its version does.
CREATE TABLE key_rotations (
    key_id        TEXT    NOT NULL,
    version       INTEGER NOT NULL,
    rotation_type TEXT    NOT NULL CHECK (rotation_type IN ('AUTOMATIC', 'ON_DEMAND')),
    rotated_at    INTEGER NOT NULL,
    PRIMARY KEY (key_id, version),
    FOREIGN KEY (key_id, version) REFERENCES key_versions (key_id, version)
) WITHOUT ROWID;

-- Import state of EXTERNAL keys. check_value: AES-CMAC of a fixed message
-- under the first imported material (never the material itself).
CREATE TABLE key_imports (
    key_id           TEXT NOT NULL PRIMARY KEY REFERENCES keys (id),
    expiration_model TEXT NOT NULL DEFAULT '',
    valid_to         INTEGER,
    check_value      BLOB,
    pending_model    TEXT NOT NULL DEFAULT '',
    pending_valid_to INTEGER
);

-- Wrapping key pairs made by GetParametersForImport (the private key is a
-- token object with CKA_ID = backing_id) and the hash of the secret half of
-- their import token.
CREATE TABLE wrapping_keys (
    backing_id BLOB    NOT NULL PRIMARY KEY CHECK (length(backing_id) > 0),
    key_id     TEXT    NOT NULL REFERENCES keys (id),
    algorithm  TEXT    NOT NULL,
    spec       TEXT    NOT NULL,
    token_hash BLOB    NOT NULL,
    state      TEXT    NOT NULL CHECK (state <> ''),
    created_at INTEGER,
    expires_at INTEGER
);

CREATE INDEX wrapping_keys_state ON wrapping_keys (state);
