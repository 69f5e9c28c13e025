-- One migration set for SQLite and PostgreSQL: only portable SQL.
-- Ids are TEXT (uuid strings), times are BIGINT unix seconds, flags are BOOLEAN,
-- ciphertext is TEXT (base64url).

CREATE TABLE organisations (
    id TEXT PRIMARY KEY NOT NULL,
    siret TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    active BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE aidants (
    id TEXT PRIMARY KEY NOT NULL,
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    email TEXT NOT NULL,
    given_name TEXT NOT NULL,
    family_name TEXT NOT NULL,
    active BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (issuer, subject)
);

CREATE TABLE memberships (
    aidant_id TEXT NOT NULL REFERENCES aidants (id),
    organisation_id TEXT NOT NULL REFERENCES organisations (id),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (aidant_id, organisation_id)
);
CREATE INDEX memberships_organisation ON memberships (organisation_id);

-- The identity is only ever stored sealed (AES-256-GCM, AAD = id); the FranceConnect
-- subject only as a keyed hash.
CREATE TABLE usagers (
    id TEXT PRIMARY KEY NOT NULL,
    subject_hash TEXT NOT NULL UNIQUE,
    identity_kid TEXT NOT NULL,
    identity_sealed TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- demarches: comma-separated démarche keys, validated by the store on read and write.
-- consent: JSON evidence of how and when the usager confirmed.
CREATE TABLE mandates (
    id TEXT PRIMARY KEY NOT NULL,
    usager_id TEXT NOT NULL REFERENCES usagers (id),
    organisation_id TEXT NOT NULL REFERENCES organisations (id),
    created_by TEXT NOT NULL REFERENCES aidants (id),
    demarches TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT,
    revoked_reason TEXT,
    consent TEXT NOT NULL
);
CREATE INDEX mandates_organisation ON mandates (organisation_id, expires_at);
CREATE INDEX mandates_usager ON mandates (usager_id);

-- Append-only, hash-chained. No foreign keys on purpose: the journal must outlive a purge
-- of the rows it names. Forbidding UPDATE/DELETE with a PostgreSQL trigger is left for a
-- backend-specific migration; for now the hash chain is what detects tampering.
CREATE TABLE journal (
    seq BIGINT PRIMARY KEY NOT NULL,
    at BIGINT NOT NULL,
    action TEXT NOT NULL,
    aidant_id TEXT,
    organisation_id TEXT,
    usager_id TEXT,
    mandate_id TEXT,
    client_id TEXT,
    demarche TEXT,
    detail TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX journal_organisation ON journal (organisation_id, seq);
CREATE INDEX journal_aidant ON journal (aidant_id, seq);
CREATE INDEX journal_usager ON journal (usager_id, seq);
CREATE INDEX journal_mandate ON journal (mandate_id, seq);
CREATE INDEX journal_at ON journal (at);
