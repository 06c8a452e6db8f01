"""Alert notifications (e-mail, chat, webhooks) through apprise and a SQLite outbox.

targets.py: ``[[notify]]`` routing and redaction; messages.py: every text, es/en;
sender.py: the outbox's per-target queues and reminders; api.py: ``GET /api/notify``.
docs/notifications.md is the user's guide.
"""
