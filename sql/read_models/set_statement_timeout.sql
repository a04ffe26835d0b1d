-- The refresh transaction's statement timeout. JIT off: a batch is planned
-- afresh each time, and compiling it costs more than it saves.
SELECT set_config('statement_timeout', $1::text, true), set_config('jit', 'off', true)
