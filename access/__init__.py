"""Who may call and what they may touch: adapter API keys, visitor tokens, the per-tenant
access policy, rate limits, and the request errors every edge maps to a response."""
