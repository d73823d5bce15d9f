-- The background advance reminds a contractor of each milestone due soon,
-- once: reminded_at records that it did. The partial indexes keep the
-- scans of the background advance to what is still open, however many
-- contracts the city has settled.
ALTER TABLE contract_milestones ADD COLUMN reminded_at timestamptz;
CREATE INDEX contract_milestones_unreminded_idx ON contract_milestones (due_at)
    WHERE reminded_at IS NULL AND status IN ('pending', 'rejected');
CREATE INDEX contracts_active_idx ON contracts (id) WHERE status = 'active';
