-- A market's volume is a statistic that round trips can grow without
-- bound; the engine stops it at MaxMoney (levee.Micros.Capped), so that the
-- row always reads back. Clamp any row written before, and hold the bound.
UPDATE markets SET volume = 1000000000000 WHERE volume > 1000000000000;
ALTER TABLE markets ADD CONSTRAINT markets_volume_bound CHECK (volume <= 1000000000000);
