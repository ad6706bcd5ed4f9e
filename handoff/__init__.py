"""Handoff: escalation signals, handoff tokens, identity bridge, first utterance from replay."""
