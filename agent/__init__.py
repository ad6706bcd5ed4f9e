"""The conversational agent shared by chat and voice: one persona, one set of tools, two
language-model providers (offline deterministic by default, OpenAI-compatible optional)."""
