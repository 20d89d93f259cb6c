"""The item catalog."""
