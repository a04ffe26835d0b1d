SELECT current_as_of::text FROM read.read_model_status WHERE view_name = $1::text
