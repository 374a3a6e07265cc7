-- Credits (payments, credit notes) by customer: invoice issuing looks up which of the
-- customers just invoiced still hold open credit, without reading their charges.

-- mode: all
CREATE INDEX ledger_customer_credits ON ledger_entries (customer_id)
    WHERE kind IN ('payment', 'credit_note');
