-- Staff settle each unmatched credit from the staff console: book it to a customer
-- ('assigned') or keep it out of the ledger ('ignored': to be returned to the sender, not a
-- customer's payment) with a note saying why. assigned_by and assigned_at record who decided
-- and when, whichever it was; a credit is ignored only with a note and a name.

-- mode: all
ALTER TABLE statement_items ADD COLUMN note text;
ALTER TABLE statement_items ADD CONSTRAINT statement_items_ignored_credit_explained
    CHECK (state <> 'ignored' OR amount_gr <= 0
           OR (note IS NOT NULL AND assigned_by IS NOT NULL AND assigned_at IS NOT NULL));

-- The console's "recently settled by staff" list and its hint "credits from this sender were
-- assigned to ..." read only the few rows staff touched; imports write none of them.
CREATE INDEX statement_items_staff_decided ON statement_items (assigned_at)
    WHERE assigned_at IS NOT NULL;
CREATE INDEX statement_items_assigned_sender ON statement_items (counterparty_account)
    WHERE state = 'assigned';
