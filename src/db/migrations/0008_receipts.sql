-- Receipts (issue 14, item 1) show the card's balance and points right after the sale
-- or refund. Those figures change with every later operation, so they are kept on the
-- transaction when it is written. Older transactions have none (NULL): their receipts
-- leave the lines out.
ALTER TABLE transactions ADD COLUMN balance_after_cents INTEGER;
ALTER TABLE transactions ADD COLUMN points_after INTEGER;
