"""``dump_sink`` runs: --resume continues an interrupted run once, and the run's last bookkeeping failing.

A run writes a ``started`` row to ``event_sinks_runs`` and a ``finished`` row when it ends. Before: a
resuming run recorded a run of its own and never closed the one it resumed, so every later --resume
resumed that same run again (skipping whatever had a dump since it started, courses published since
included); and a run whose dumps had all landed ended in a traceback when the ``finished`` row could
not be written, its summary and failures never printed.
"""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from event_sinks.clickhouse import close_connections, get_connection

from ..support import sample_sink


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("dump_sink", "test_words", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def ledger() -> dict[str, int]:
    engine = get_connection()
    return dict(engine.query(
        f"SELECT key, count() FROM `{engine.database}`.event_sinks_dump_log WHERE sink = 'test_words' GROUP BY key"))


def unfinished_runs() -> int:
    engine = get_connection()
    return engine.query(
        f"SELECT count() FROM (SELECT run_id FROM `{engine.database}`.event_sinks_runs "
        "GROUP BY run_id HAVING countIf(state = 'finished') = 0)")[0][0]


def interrupted_at(key: str, *args: str) -> None:
    """Run dump_sink --all --force ARGS, interrupted (Ctrl-C) when it reaches ``key``."""
    original = sample_sink.WordsSink.serialize

    def interrupt(self, k):
        if k == key:
            raise KeyboardInterrupt
        return original(self, k)

    sample_sink.WordsSink.serialize = interrupt
    try:
        with pytest.raises(CommandError, match="interrupted after .* --resume"):
            run("--all", "--force", *args)
    finally:
        sample_sink.WordsSink.serialize = original


@pytest.fixture
def six(embedded, words):
    sample_sink.SOURCE.update({f"doc{i}": ["w"] for i in range(6)})
    return words


def test_resume_closes_the_run_it_resumed_and_a_second_resume_starts_fresh(six):
    interrupted_at("doc3")
    assert unfinished_runs() == 1
    out, err = run("--all", "--force", "--resume")
    assert "3 keys already done, 3 to go" in err and "3 dumped" in out
    assert unfinished_runs() == 0  # the interrupted run is finished now
    assert ledger() == {f"doc{i}": 1 for i in range(6)}

    # Nothing is left to resume: the next --resume is a plain run (here --force: everything once more).
    out, err = run("--all", "--force", "--resume")
    assert "test_words: no interrupted run to resume; dumping all selected keys" in err and "6 dumped" in out
    out, err = run("--all", "--resume")  # and without --force, unchanged keys are skipped as usual
    assert "no interrupted run to resume" in err and "0 dumped, 0 deleted, 6 skipped" in out
    assert unfinished_runs() == 0


def test_a_key_changed_after_the_interrupted_run_dumped_it_is_dumped_again(six):
    interrupted_at("doc3")
    sample_sink.SOURCE["doc1"] = ["w", "published", "since"]  # a new version of a key the run had dumped
    sample_sink.SOURCE["doc9"] = ["new"]  # and a key created since the run started
    out, err = run("--all", "--force", "--resume")
    assert "2 keys already done, 5 to go (1 changed since its dump)" in err
    assert "5 dumped" in out
    assert ledger() == {"doc0": 1, "doc1": 2, "doc2": 1, "doc3": 1, "doc4": 1, "doc5": 1, "doc9": 1}
    engine = get_connection()
    assert engine.query(f"SELECT count() FROM `{engine.database}`.test_words WHERE doc = 'doc1'") == [(3,)]


def test_a_resume_interrupted_in_turn_keeps_the_first_runs_work(six):
    interrupted_at("doc2")
    interrupted_at("doc4", "--resume")
    out, err = run("--all", "--force", "--resume")
    assert "4 keys already done, 2 to go" in err and "2 dumped" in out
    assert ledger() == {f"doc{i}": 1 for i in range(6)}
    assert unfinished_runs() == 0


def test_a_sink_without_versions_resumes_by_its_changed_keys(six, monkeypatch):
    changed: list[str] = []
    monkeypatch.setattr(sample_sink.WordsSink, "version", lambda self, key: None)
    monkeypatch.setattr(sample_sink.WordsSink, "keys_since", lambda self, since: list(changed))
    interrupted_at("doc3")
    changed.append("doc0")
    _, err = run("--all", "--force", "--resume")
    assert "2 keys already done, 4 to go (1 changed since its dump)" in err
    assert ledger()["doc0"] == 2 and ledger()["doc1"] == 1


# -- the run's last bookkeeping --------------------------------------------------------------------------


@pytest.fixture
def over_http(settings, http_server, database, words):
    if not http_server.running:
        http_server.start()
    settings.EVENT_SINKS = {"DSN": http_server.dsn.rsplit("/", 1)[0] + f"/{database}", "DISPATCH": "sync",
                            "CONNECT_TIMEOUT": 1, "SEND_RECEIVE_TIMEOUT": 5}
    close_connections()
    yield http_server
    if not http_server.running:
        http_server.start()
    close_connections()


def engine_goes_away_after_the_dumps(monkeypatch, server):
    from event_sinks.management.commands import dump_sink

    real = dump_sink.dump

    def then_stop(*args, **kwargs):
        summary = real(*args, **kwargs)
        server.stop()
        return summary

    monkeypatch.setattr(dump_sink, "dump", then_stop)


def test_the_summary_is_printed_when_the_run_cannot_be_recorded_as_finished(over_http, monkeypatch):
    sample_sink.SOURCE.update(a=["x"], b=["y"])
    engine_goes_away_after_the_dumps(monkeypatch, over_http)
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("dump_sink", "test_words", "--all", stdout=out, stderr=err)
    assert "test_words: 2 dumped, 0 deleted, 0 skipped, 0 failed" in out.getvalue()
    message = str(caught.value)
    assert message.startswith("test_words: the dumps above are done, but the run could not be recorded as finished "
                              "(event_sinks_runs): ClickHouse at "), message
    assert "unreachable" in message and "--resume" in message and "Traceback" not in message
    assert caught.value.returncode == 1
    over_http.start()
    assert ledger() == {"a": 1, "b": 1}  # the dumps did land


def test_failures_and_the_bookkeeping_error_are_both_reported(over_http, monkeypatch):
    sample_sink.SOURCE.update(good=["a"], bad=["b", "c"])
    sample_sink.FAIL_AFTER["bad"] = 1
    engine_goes_away_after_the_dumps(monkeypatch, over_http)
    out = StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("dump_sink", "test_words", "--all", stdout=out, stderr=StringIO())
    assert "FAILED bad: source of bad broke at word 1" in out.getvalue()
    assert "test_words: 1 dumped, 0 deleted, 0 skipped, 1 failed" in out.getvalue()
    message = str(caught.value)
    assert message.startswith("1 of 2 keys failed (listed above); and test_words: the dumps above are done, but "
                              "the run could not be recorded as finished"), message
