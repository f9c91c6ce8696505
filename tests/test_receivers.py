"""Receivers as the platform's tools see them: weak references, named, documented, disconnectable.

edx-platform's ``simulate_publish`` (``openedx/core/djangoapps/content/course_overviews/management/
commands/simulate_publish.py``) walks ``SignalHandler.course_published.receivers`` and calls each
stored reference (``fn_ref()``) to get the function: for ``--show-receivers`` (name and docstring),
``--dry-run`` (names) and ``--receivers NAME ...`` (``signal.disconnect(fn)`` for every other one).
A receiver connected with ``weak=False`` is stored as the function itself, and calling it breaks.
"""

from __future__ import annotations

import gc
import textwrap

from event_sinks import receivers


def _fns(signal):
    """What simulate_publish's get_receiver_fns() does."""
    return [fn_ref() for _, fn_ref, *_ in signal.receivers]


def _name(fn):
    """simulate_publish's name_from_fn()."""
    return f"{fn.__module__}.{fn.__name__}"


def test_simulate_publish_can_show_and_select_our_receivers(embedded, signal_handler):
    receivers.disconnect_all()
    try:
        receivers.connect_all()
        gc.collect()  # weak references: our receivers must stay alive on their own
        signal = signal_handler.course_published
        ours = {_name(fn): fn for fn in _fns(signal)}
        # one receiver per signal: one publish is one job for both course sinks
        assert "event_sinks.receivers.event_sinks_course_published_receiver" in ours
        doc = textwrap.dedent(ours["event_sinks.receivers.event_sinks_course_published_receiver"].__doc__)
        assert "course_outline" in doc and "block_relationships" in doc  # --show-receivers prints it

        calls = []

        def other_app_receiver(sender, course_key, **kwargs):
            calls.append(course_key)

        signal.connect(other_app_receiver)
        # --receivers <the other app>: every receiver not named is disconnected by function
        for fn in _fns(signal):
            if _name(fn) != _name(other_app_receiver):
                signal.disconnect(fn)
        assert [_name(fn) for fn in _fns(signal)] == [_name(other_app_receiver)]
        signal.send_robust(sender=None, course_key="course-v1:A+B+C")
        assert calls == ["course-v1:A+B+C"]
    finally:
        receivers.disconnect_all()
        receivers.connect_all()


def test_connecting_twice_connects_once_and_disconnect_all_leaves_nothing(embedded, signal_handler):
    receivers.disconnect_all()
    signal = signal_handler.course_published
    first = receivers.connect_all()
    assert first and receivers.connect_all() == 0
    assert len(_fns(signal)) == 1  # one receiver for course_outline and block_relationships
    receivers.disconnect_all()
    assert _fns(signal) == []
    receivers.connect_all()
