"""Tool results as short sentences an agent can type or say (used by the offline model and
as the fallback wording of the LLM model). Only fields the tools return are used."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from threadline.projections.entities import MONTHS


def when(starts_at: str) -> str:
    """ "2026-11-23T09:00" → "Monday 23 November at 09:00"."""
    try:
        at = datetime.fromisoformat(starts_at)
    except ValueError:
        return starts_at
    return f"{at:%A} {at.day} {at:%B} at {at:%H:%M}"


def _status(text: Any) -> str:
    return str(text).replace("_", " ")


def claims(found: list[dict[str, Any]], month: int | None, reference: str | None) -> str:
    which = f"{MONTHS[month - 1]} " if month else ""
    if not found:
        if reference:
            return f"I couldn't find claim {reference} on your account."
        return f"I couldn't find a {which}claim on your account."
    if len(found) == 1:
        c = found[0]
        text = (
            f"Your {c.get('month_name', '')} claim {c['reference']} for {c['amount']}"
            f" ({c['description'].lower()} at {c['provider']}) is {_status(c['status'])}"
        )
        if c.get("status_detail"):
            text += f": {c['status_detail']}"
        return text.replace("  ", " ") + "."
    listed = "; ".join(
        f"{c['reference']} ({c.get('month_name', '')}, {c['amount']}, {_status(c['status'])})"
        for c in found[:4]
    )
    return f"I found {len(found)} {which}claims: {listed}. Which one do you mean?"


def policies(found: list[dict[str, Any]]) -> str:
    if not found:
        return "I couldn't find a policy on your account."
    p = found[0]
    riders = p.get("riders") or []
    extra = f", with {' and '.join(riders)} cover" if riders else ""
    return (
        f"Your {p['plan']} policy is {p['status']}{extra}: the deductible is {p['deductible']}"
        f" and the premium is {p['monthly_premium']} a month."
    )


def appointments(found: list[dict[str, Any]]) -> str:
    booked = [a for a in found if a.get("status") == "booked"]
    if not booked:
        return "You have no appointments booked. Would you like me to find you a time?"
    listed = "; ".join(f"{when(a['starts_at'])} with {a['advisor']}" for a in booked[:3])
    return f"You're booked for {listed}."


def slots(found: list[dict[str, Any]]) -> str:
    if not found:
        return "I'm afraid there are no free slots at the moment."
    listed = ", ".join(when(s["starts_at"]) for s in found[:3])
    return f"The next free times are {listed}. Which one suits you?"


def booked(result: dict[str, Any]) -> str:
    return (
        f"You're booked for {when(result['starts_at'])} with {result['advisor']}; "
        f"your reference is {result['reference']}."
    )


def quotes(results: list[dict[str, Any]]) -> str:
    parts = []
    for q in results:
        riders = [r["rider"] for r in q.get("riders", [])]
        with_riders = f" with {' and '.join(riders)} cover" if riders else ""
        parts.append(
            f"the {q['plan']} plan{with_riders} and a {q['deductible']} deductible comes to "
            f"{q['monthly_total']} a month"
        )
    text = "; ".join(parts)
    if len(results) > 1:
        cheapest = min(results, key=lambda q: int(q.get("monthly_total_cents", 0)))
        text += f". The {cheapest['plan']} plan is the cheaper option"
    return text[0].upper() + text[1:] + "."


def tool_failed(name: str, error: str) -> str:
    doing = {"lookup": "look that up", "schedule": "book that", "quote": "price that"}
    return f"Sorry, I couldn't {doing.get(name, 'do that')}: {error.rstrip('.')}."
