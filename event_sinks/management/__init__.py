"""Management commands of event-sinks."""
