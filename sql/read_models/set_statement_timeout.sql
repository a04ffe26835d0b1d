-- The refresh transaction's settings: its statement timeout; JIT off (a
-- batch is planned afresh each time, and compiling it costs more than it
-- saves); and floats rendered exactly, since a batch compares a model's
-- old and new rows by their text (with extra_float_digits = 0, set on a
-- server or database, a change beyond the 15th digit looked like none).
SELECT set_config('statement_timeout', $1::text, true), set_config('jit', 'off', true),
       set_config('extra_float_digits', '1', true)
