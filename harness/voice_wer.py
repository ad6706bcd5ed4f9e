"""The held-in sentences of the word-error-rate set (tests/integration/voice/test_voice_wer.py,
benchmarks/voice.py): six said in the chat, six never said, and the vocabulary a voice leg
would be biased with."""

from __future__ import annotations

from threadline.channels.voice.vocabulary import build_vocabulary

CHAT = [
    "I have a question about my order",
    "has my order shipped yet",
    "the parcel was supposed to arrive on Monday",
    "I would like to change the delivery address",
    "can I speak to a person please",
    "yes that is correct",
]
UNSEEN = [
    "could you also send me the confirmation by email please",
    "my neighbour took the package in by mistake",
    "what time does your warehouse close on Fridays",
    "I think the invoice shows the wrong amount",
    "please cancel the second item in my basket",
    "the blue jacket was too small so I sent it back",
]
VOCABULARY = build_vocabulary(CHAT, ["order", "parcel", "delivery address"])
