"""Voice timing in the metrics fold: click → first audio and turn latency come from the
leg's own first-audio records; a leg that never played is a silent failure, not a latency."""

from __future__ import annotations

from datetime import timedelta

from tests.support.streams import T0, Stream
from tests.unit.test_projections_metrics import ListLog
from threadline.projections.metrics import build_metrics
from threadline.projections.runner import Runner
from threadline.projections.views import MemoryMetricsView


def answered_call() -> Stream:
    s = Stream()
    s.add("ConversationStarted", channel="chat")
    s.add("HandoffOffered", at=5, handoff_id="h1", channel="webrtc", reason="asked")
    s.add("HandoffAccepted", at=10, handoff_id="h1", channel="webrtc")
    s.add("LegOpened", "L1", at=10.2, channel="webrtc")
    s.add("HandoffCompleted", at=10.3, handoff_id="h1", leg_id="L1", first_utterance="Hi.")
    s.add("AgentSpoke", "L1", at=12, text="Hi.", first_audio_at=T0 + timedelta(seconds=10.9))
    s.add(
        "UtteranceTranscribed",
        "L1",
        at=21.5,
        role="visitor",
        text="has my order shipped yet",
        start_ms=0,
        end_ms=1500,
        confidence=0.9,
        ended_at=T0 + timedelta(seconds=20),
    )
    s.add("AgentSpoke", "L1", at=23, text="Yes.", first_audio_at=T0 + timedelta(seconds=21.1))
    s.add("AgentSpoke", "L1", at=24, text="Cut.", interrupted=True, spoken_text="")
    s.add("LegClosed", "L1", at=30, reason="visitor_hangup")
    return s


def silent_call() -> Stream:
    s = Stream()
    s.add("ConversationStarted", channel="chat")
    s.add("HandoffOffered", at=5, handoff_id="h2", channel="webrtc", reason="asked")
    s.add("HandoffAccepted", at=10, handoff_id="h2", channel="webrtc")
    s.add("LegOpened", "L2", at=10.2, channel="webrtc")
    s.add("HandoffCompleted", at=10.3, handoff_id="h2", leg_id="L2", first_utterance="Hi.")
    s.add("AgentSpoke", "L2", at=11, text="Hi.", interrupted=True, spoken_text="")
    s.add("LegClosed", "L2", at=20, reason="peer_timeout")
    return s


def test_click_to_first_audio_and_turn_latency_come_from_first_audio_at() -> None:
    events = answered_call().events + silent_call().events
    m = build_metrics(events)
    click = m.latency_seconds["click_to_first_audio"]
    assert click.count == 1  # the silent leg has no latency
    assert click.p50 is not None
    assert abs(click.p50 - 0.9) < 1e-6
    turn = m.latency_seconds["turn"]
    assert turn.count == 1
    assert turn.p50 is not None
    assert abs(turn.p50 - 1.1) < 1e-6
    assert m.silent_voice_legs == 1
    assert m.latency_seconds["accept_to_complete"].count == 2  # the handoff events still count


def test_events_recorded_before_the_fields_existed_give_no_voice_timing() -> None:
    s = Stream()
    s.add("HandoffAccepted", at=10, handoff_id="h3", channel="webrtc")
    s.add("HandoffCompleted", at=10.3, handoff_id="h3", leg_id="L3", first_utterance="Hi.")
    s.add("AgentSpoke", "L3", at=12, text="Hi.")  # no first_audio_at: an old event
    m = build_metrics(s.events)
    assert m.latency_seconds["click_to_first_audio"].count == 0
    assert m.silent_voice_legs == 0  # not closed yet


def test_the_incremental_view_equals_the_fold() -> None:
    events = answered_call().events + silent_call().events
    view = MemoryMetricsView()
    Runner(ListLog(events), view, batch_size=3).catch_up()
    assert view.metrics() == build_metrics(events)
