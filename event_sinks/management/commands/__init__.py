"""dump_sink, sink_schema, list_sinks, show, query, demo."""
