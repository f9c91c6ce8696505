"""course_insights: the example plugin of the event-sinks tutorial.

Two sinks: ``course_block_counts`` (how many blocks of each type a course has, kept current by
Studio's publish signals) and ``content_flags`` (the blocks course staff flagged for review, a
Django model mirrored by a ModelSink).
"""
