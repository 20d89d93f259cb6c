"""Consumers read the event log by offset and derive state; each can be replayed from zero."""
