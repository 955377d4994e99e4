-- Key policies: one document per key (AWS allows only the policy named
-- "default").
CREATE TABLE key_policies (
    key_id     TEXT PRIMARY KEY REFERENCES keys(id) ON DELETE CASCADE,
    document   TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Grants. Operations and constraints are JSON: they are read and written
-- whole, never queried by part.
CREATE TABLE grants (
    grant_id           TEXT PRIMARY KEY,
    key_id             TEXT NOT NULL REFERENCES keys(id) ON DELETE CASCADE,
    issuing_account    TEXT NOT NULL,
    name               TEXT NOT NULL DEFAULT '',
    grantee_principal  TEXT NOT NULL,
    retiring_principal TEXT NOT NULL DEFAULT '',
    operations         TEXT NOT NULL,
    constraints        TEXT NOT NULL DEFAULT '{}',
    created_at         INTEGER NOT NULL
);
CREATE INDEX grants_by_key ON grants (key_id, grant_id);
CREATE INDEX grants_by_retiring ON grants (retiring_principal, grant_id);
