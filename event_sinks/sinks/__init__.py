"""The built-in sinks. They register through the ``event_sinks.sinks`` entry points like any plugin."""
