-- SPEC §6: every window table has a scope column. bot_signals is the
-- input of the clean scope, so all of its rows are in scope 'all' (the
-- column is not part of the row's identity; rows written before this
-- migration read as 'all' too).
ALTER TABLE bot_signals ADD COLUMN scope String DEFAULT 'all' AFTER window_end;
