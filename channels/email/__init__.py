"""Email as one more leg of a conversation: SMTP in (aiosmtpd), SMTP relay out (smtplib)."""
