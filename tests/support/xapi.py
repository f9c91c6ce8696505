"""xAPI video statements as event-routing-backends emits them, and Aspects-shaped tables to hold them.

Facts from event-routing-backends (``processors/xapi/event_transformers/video_events.py`` and
``constants.py``): a video statement's object id is ``<LMS_ROOT_URL>/xblock/<usage key>``; its verb is
``http://adlnet.gov/expapi/verbs/initialized`` for ``load_video``, ``https://w3id.org/xapi/video/verbs/played``
for ``play_video``, ``.../video/verbs/paused`` for ``pause_video``, ``.../video/verbs/seeked`` for
``seek_video``, ``http://adlnet.gov/expapi/verbs/completed`` and ``.../terminated`` for complete and stop;
the course is the first ``context.contextActivities.parent`` (``<LMS_ROOT_URL>/course/<course key>``);
played/paused/stopped carry the position in ``result.extensions["https://w3id.org/xapi/video/extensions/time"]``.
The statement id is a UUID5 of the verb and of the actor plus the timestamp, so a statement sent twice
keeps its id.

Aspects stores statements as ``xapi_events_all (event_id UUID, emission_time DateTime64(6), event String)``
(a ReplacingMergeTree ordered by emission time and id) and parses them into ``xapi_events_all_parsed``
through a materialized view; :func:`create_tables` makes both, the parsed columns computed as Aspects'
model does (verb, actor, object and course from the statement's JSON).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

LMS_ROOT_URL = "http://localhost:18000"

INITIALIZED = "http://adlnet.gov/expapi/verbs/initialized"
PLAYED = "https://w3id.org/xapi/video/verbs/played"
PAUSED = "https://w3id.org/xapi/video/verbs/paused"
SEEKED = "https://w3id.org/xapi/video/verbs/seeked"
COMPLETED = "http://adlnet.gov/expapi/verbs/completed"
TERMINATED = "http://adlnet.gov/expapi/verbs/terminated"
VERB_NAMES = {INITIALIZED: "initialized", PLAYED: "played", PAUSED: "paused", SEEKED: "seeked",
              COMPLETED: "completed", TERMINATED: "terminated"}
#: The Open edX tracking event each verb comes from.
EVENT_NAMES = {INITIALIZED: "load_video", PLAYED: "play_video", PAUSED: "pause_video", SEEKED: "seek_video",
               COMPLETED: "complete_video", TERMINATED: "stop_video"}

VIDEO_ACTIVITY = "https://w3id.org/xapi/video/activity-type/video"
COURSE_ACTIVITY = "http://adlnet.gov/expapi/activities/course"
TIME = "https://w3id.org/xapi/video/extensions/time"
LENGTH = "https://w3id.org/xapi/video/extensions/length"
_NAMESPACE = uuid.UUID("6ba7b810-9dad-11d1-80b4-00c04fd430c8")  # uuid.NAMESPACE_DNS, as the backend uses


def course_of(usage_key: str) -> str:
    """The course key of a ``block-v1:`` usage key."""
    body = usage_key.split(":", 1)[1].split("+type@", 1)[0]
    return f"course-v1:{body}"


def statement_id(verb: str, actor: dict, timestamp: str) -> str:
    """The backend's statement id: stable for the same actor, verb and time."""
    namespace = uuid.uuid5(_NAMESPACE, json.dumps({"id": verb, "display": {"en": VERB_NAMES[verb]}}))
    return str(uuid.uuid5(namespace, f"{json.dumps(actor, sort_keys=True)}-{timestamp}"))


def video_statement(usage_key: str, verb: str, *, learner: str, at: datetime, position: float = 0.0,
                    length: float = 195.0, course_name: str = "A course", lms_root: str = LMS_ROOT_URL) -> dict:
    """One statement about the video ``usage_key``, as event-routing-backends transforms a video event."""
    if verb not in VERB_NAMES:
        raise ValueError(f"not a video verb: {verb!r}")
    actor = {"objectType": "Agent", "account": {"homePage": lms_root, "name": learner}}
    timestamp = at.astimezone(UTC).isoformat()
    statement: dict = {
        "id": statement_id(verb, actor, timestamp),
        "actor": actor,
        "verb": {"id": verb, "display": {"en": VERB_NAMES[verb]}},
        "object": {"id": f"{lms_root}/xblock/{usage_key}", "objectType": "Activity",
                   "definition": {"type": VIDEO_ACTIVITY}},
        "context": {
            "contextActivities": {"parent": [{
                "id": f"{lms_root}/course/{course_of(usage_key)}", "objectType": "Activity",
                "definition": {"name": {"en-US": course_name}, "type": COURSE_ACTIVITY},
            }]},
            "extensions": {
                "https://w3id.org/xapi/openedx/extension/transformer-version": "event-routing-backends@9.0.0",
                "https://w3id.org/xapi/openedx/extensions/session-id": uuid.uuid5(_NAMESPACE, learner).hex,
                LENGTH: length,
            },
        },
        "timestamp": timestamp,
        "version": "1.0.3",
    }
    if verb in (PLAYED, PAUSED, TERMINATED):
        statement["result"] = {"extensions": {TIME: position}}
    return statement


def viewing(usage_key: str, learner: str, start: datetime, *, plays: int, course_name: str = "A course") -> list[dict]:
    """What a learner watching a video sends: one load, then ``plays`` times play and pause, a minute apart."""
    found = [video_statement(usage_key, INITIALIZED, learner=learner, at=start, course_name=course_name)]
    for i in range(plays):
        at = start + timedelta(minutes=2 * i + 1)
        found.append(video_statement(usage_key, PLAYED, learner=learner, at=at, position=30.0 * i,
                                     course_name=course_name))
        found.append(video_statement(usage_key, PAUSED, learner=learner, at=at + timedelta(minutes=1),
                                     position=30.0 * i + 29, course_name=course_name))
    return found


def create_tables(connection, database: str) -> None:
    """Aspects' raw statement table and its parsed twin (filled by a materialized view) in ``database``."""
    db = f"`{database}`"
    connection.command(f"CREATE DATABASE IF NOT EXISTS {db}")
    connection.command(
        f"CREATE TABLE {db}.xapi_events_all (event_id UUID, emission_time DateTime64(6), event String) "
        "ENGINE = ReplacingMergeTree PRIMARY KEY (emission_time) ORDER BY (emission_time, event_id) "
        "PARTITION BY toYYYYMM(emission_time)")
    connection.command(
        f"CREATE TABLE {db}.xapi_events_all_parsed (event_id UUID, verb_id LowCardinality(String), "
        "actor_id String, object_id String, course_id LowCardinality(String), course_key LowCardinality(String), "
        "org LowCardinality(String), emission_time DateTime64(6), event String) "
        "ENGINE = ReplacingMergeTree ORDER BY (org, course_id, verb_id, actor_id, emission_time, event_id)")
    connection.command(
        f"CREATE MATERIALIZED VIEW {db}.xapi_events_all_parsed_mv TO {db}.xapi_events_all_parsed AS "
        "SELECT event_id, JSON_VALUE(event, '$.verb.id') AS verb_id, "
        "JSON_VALUE(event, '$.actor.account.name') AS actor_id, JSON_VALUE(event, '$.object.id') AS object_id, "
        "if(JSON_VALUE(event, '$.context.contextActivities.parent[0].definition.type') = "
        f"'{COURSE_ACTIVITY}', JSON_VALUE(event, '$.context.contextActivities.parent[0].id'), "
        "JSON_VALUE(event, '$.object.id')) AS course_id, "
        "splitByString('/', course_id)[-1] AS course_key, "
        "splitByChar('+', splitByChar(':', course_key)[2])[1] AS org, emission_time, event "
        f"FROM {db}.xapi_events_all")


def insert(connection, database: str, statements: Iterable[dict]) -> int:
    """Store statements as the backend's ClickHouse sink does (a row each, emission time = the timestamp)."""
    statements = list(statements)
    connection.command(
        f"INSERT INTO `{database}`.xapi_events_all (event_id, emission_time, event) "
        "SELECT toUUID(s.1), parseDateTime64BestEffort(s.2, 6), s.3 "
        "FROM (SELECT arrayJoin(arrayZip({ids:Array(String)}, {times:Array(String)}, {events:Array(String)})) AS s)",
        {"ids": [s["id"] for s in statements], "times": [s["timestamp"] for s in statements],
         "events": [json.dumps(s) for s in statements]})
    return len(statements)
