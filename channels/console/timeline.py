"""The timeline of one conversation: every event on one time axis, in lanes per leg.

A lane is one leg (a chat socket, a WebRTC call, an SMS thread, a PSTN call); events that
belong to no leg (start, CSAT, resolution) sit in the `conversation` lane. Handoff steps are
also returned as markers that the page draws across all lanes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from threadline.channels.console.masking import mask_data, mask_whole
from threadline.ledger.envelope import RecordedEvent

CONVERSATION_LANE = "conversation"

KINDS = {
    "ConversationStarted": "lifecycle",
    "LegOpened": "leg",
    "LegClosed": "leg",
    "MessagePosted": "message",
    "UtteranceTranscribed": "utterance",
    "AgentSpoke": "speech",
    "IdentityClaimed": "identity",
    "IdentityVerified": "identity",
    "VerificationFailed": "identity",
    "ToolCalled": "tool",
    "ToolResulted": "tool",
    "EscalationSignalDetected": "escalation",
    "HandoffOffered": "handoff",
    "HandoffAccepted": "handoff",
    "HandoffCompleted": "handoff",
    "HandoffExpired": "handoff",
    "HandoffDeclined": "handoff",
    "HumanRequested": "human",
    "OperatorJoined": "human",
    "OperatorLeft": "human",
    "CSATRecorded": "outcome",
    "ConversationResolved": "outcome",
    "SubjectErased": "identity",
}


def _clip(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _compact(value: Any) -> str:
    return _clip(json.dumps(value, ensure_ascii=False, sort_keys=True, default=str), 120)


def summarize(event_type: str, d: dict[str, Any]) -> str:
    """One human line per event, from its (possibly masked) payload."""
    match event_type:
        case "HumanRequested":
            return f"asked for a person ({d.get('reason')})"
        case "OperatorJoined":
            return f"{d.get('display_name') or d.get('operator')} joined"
        case "OperatorLeft":
            return f"{d.get('operator')} handed back to the AI"
        case "ConversationStarted":
            return f"conversation started on {d.get('channel')}"
        case "LegOpened":
            ref = d.get("transport_ref")
            return f"{d.get('channel')} leg opened" + (f" ({ref})" if ref else "")
        case "LegClosed":
            return f"leg closed: {d.get('reason')}"
        case "MessagePosted":
            return f"{d.get('role')}: {_clip(str(d.get('text', '')))}"
        case "UtteranceTranscribed":
            return f"{d.get('role')} said: {_clip(str(d.get('text', '')))}"
        case "AgentSpoke":
            if d.get("interrupted"):
                heard = d.get("spoken_text") or ""
                return f"agent spoke, interrupted after: {_clip(str(heard)) or '(nothing)'}"
            return f"agent spoke: {_clip(str(d.get('text', '')))}"
        case "IdentityClaimed":
            return f"claims to be {d.get('subject')} ({d.get('method')})"
        case "IdentityVerified":
            return f"verified {d.get('subject')} by {d.get('method')}, level {d.get('level')}"
        case "VerificationFailed":
            return f"verification failed ({d.get('method')}): {d.get('reason')}"
        case "ToolCalled":
            return f"tool {d.get('name')}({_compact(d.get('arguments', {}))})"
        case "ToolResulted":
            if d.get("error"):
                return f"tool result {d.get('call_id')}: error {_clip(str(d.get('error')))}"
            return f"tool result {d.get('call_id')}: {_compact(d.get('result'))}"
        case "EscalationSignalDetected":
            return (
                f"signal {d.get('signal')} score {d.get('score')}: "
                f"{_clip(str(d.get('evidence', '')))}"
            )
        case "HandoffOffered":
            return f"handoff {d.get('handoff_id')} offered ({d.get('channel')})"
        case "HandoffAccepted":
            return f"handoff {d.get('handoff_id')} accepted"
        case "HandoffCompleted":
            return (
                f"handoff {d.get('handoff_id')} completed on leg {d.get('leg_id')}: "
                f"{_clip(str(d.get('first_utterance', '')))}"
            )
        case "HandoffExpired":
            return f"handoff {d.get('handoff_id')} expired"
        case "HandoffDeclined":
            return f"handoff {d.get('handoff_id')} declined"
        case "CSATRecorded":
            return f"CSAT {d.get('score')}/5"
        case "ConversationResolved":
            return f"resolved: {d.get('outcome')}"
        case "SubjectErased":
            return f"subject {d.get('subject')} erased"
        case "EmailReceived":
            files = len(d.get("attachments") or [])
            extra = f", {files} attachment(s)" if files else ""
            return f"email from {d.get('sender')}: {_clip(str(d.get('subject', '')))}{extra}"
        case "EmailSent":
            return f"email sent to {d.get('to')} ({d.get('message_id')})"
        case "EmailDeliveryFailed":
            return f"email to {d.get('to')} not delivered: {_clip(str(d.get('error', '')))}"
    return _compact(d)


def _flags(event_type: str, d: dict[str, Any]) -> list[str]:
    flags = []
    if event_type == "AgentSpoke" and d.get("interrupted"):
        flags.append("interrupted")
    if event_type == "ToolResulted" and d.get("error"):
        flags.append("error")
    if event_type in ("VerificationFailed", "EmailDeliveryFailed"):
        flags.append("failed")
    return flags


def build_timeline(
    conversation_id: str,
    events: Sequence[RecordedEvent],
    *,
    mask: bool,
    unreadable: Sequence[tuple[int, str]] = (),
) -> dict[str, Any]:
    """`unreadable`: (position, reason) of stored records that did not decode; they appear
    as rows of kind `unreadable` so the gap is visible where it is."""
    lanes: dict[str, dict[str, Any]] = {}
    start = events[0].occurred_at if events else None
    rows: list[dict[str, Any]] = []
    markers: list[dict[str, Any]] = []
    tool_calls: dict[str, int] = {}

    def lane_for(event: RecordedEvent, channel: str | None) -> str:
        if event.leg_id is None:
            lane_id, lane_channel = CONVERSATION_LANE, CONVERSATION_LANE
        else:
            lane_id, lane_channel = event.leg_id, channel or "unknown"
        lane = lanes.get(lane_id)
        if lane is None:
            lane = lanes[lane_id] = {
                "id": lane_id,
                "channel": lane_channel,
                "opened_at": event.occurred_at.isoformat(),
                "closed_at": None,
                "transport_ref": None,
            }
        elif lane["channel"] == "unknown" and channel:
            lane["channel"] = channel
        return lane_id

    for event in events:
        envelope = event.to_json()
        raw = envelope["data"]
        shown = mask_data(raw) if mask else raw
        envelope["data"] = shown
        channel = raw.get("channel") if event.type in ("ConversationStarted", "LegOpened") else None
        lane_id = lane_for(event, channel if isinstance(channel, str) else None)
        if event.type == "LegOpened":
            ref = raw.get("transport_ref")
            lanes[lane_id]["transport_ref"] = mask_whole(ref) if mask and ref else ref
        elif event.type == "LegClosed":
            lanes[lane_id]["closed_at"] = event.occurred_at.isoformat()
        row = {
            "position": event.position,
            "type": event.type,
            "kind": KINDS.get(event.type, "other"),
            "lane": lane_id,
            "occurred_at": envelope["occurred_at"],
            "offset_ms": int((event.occurred_at - start).total_seconds() * 1000) if start else 0,
            "summary": summarize(event.type, shown),
            "flags": _flags(event.type, raw),
            "envelope": envelope,
        }
        if event.type == "ToolCalled":
            tool_calls[str(raw.get("call_id"))] = event.position
        elif event.type == "ToolResulted":
            row["call_position"] = tool_calls.get(str(raw.get("call_id")))
        if row["kind"] == "handoff":
            markers.append(
                {
                    "position": event.position,
                    "step": event.type.removeprefix("Handoff").lower(),
                    "handoff_id": raw.get("handoff_id"),
                    "occurred_at": envelope["occurred_at"],
                }
            )
        rows.append(row)

    for position, reason in unreadable:
        rows.append(
            {
                "position": position,
                "type": "Unreadable",
                "kind": "unreadable",
                "lane": CONVERSATION_LANE,
                "occurred_at": None,
                "offset_ms": None,
                "summary": f"stored record does not decode: {reason}",
                "flags": ["unreadable"],
                "envelope": None,
            }
        )
    if unreadable and CONVERSATION_LANE not in lanes:
        lanes[CONVERSATION_LANE] = {
            "id": CONVERSATION_LANE,
            "channel": CONVERSATION_LANE,
            "opened_at": None,
            "closed_at": None,
            "transport_ref": None,
        }
    rows.sort(key=lambda r: int(r["position"]))
    return {
        "conversation_id": conversation_id,
        "version": max([r["position"] for r in rows], default=0),
        "started_at": start.isoformat() if start else None,
        "ended_at": events[-1].occurred_at.isoformat() if events else None,
        "masked": mask,
        "lanes": list(lanes.values()),
        "events": rows,
        "handoff_markers": markers,
    }
