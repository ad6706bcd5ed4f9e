"""SMS and WhatsApp as transports of one conversation.

One file per provider (`twilio.py`, `whatsapp_cloud.py`) behind the small interface in
`provider.py`; `service.py` links inbound messages to conversations and records them.
"""
