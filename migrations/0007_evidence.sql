-- Files a contractor attaches as evidence for a milestone claim: stored in
-- the database so they are as durable as the claim itself and backed up with
-- it. Size and type are checked before they get here (contracting/evidence.go).
CREATE TABLE contract_evidence (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    contract_id  bigint NOT NULL,
    milestone    integer NOT NULL,
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    content_type text NOT NULL,
    size         integer NOT NULL CHECK (size > 0),
    sha256       bytea NOT NULL CHECK (octet_length(sha256) = 32),
    data         bytea NOT NULL,
    uploaded_by  bigint NOT NULL REFERENCES accounts (id),
    uploaded_at  timestamptz NOT NULL,
    FOREIGN KEY (contract_id, milestone) REFERENCES contract_milestones (contract_id, n)
);
CREATE INDEX contract_evidence_milestone_idx ON contract_evidence (contract_id, milestone, id);
