"""The chat lines and spoken phrases the voice contract tests and the voice benchmark use."""

CHAT = [
    "I have a question about my January claim.",
    "It was for water damage in the kitchen.",
    "The claim number is 48213.",
]
SPOKEN = [
    "I have a question about my January claim",
    "it was for water damage in the kitchen",
    "the claim number is 48213",
    "about my January claim",
    "yes please",
    "no thank you",
    "I want to talk to a person",
    "how long will it take",
    "goodbye",
]
