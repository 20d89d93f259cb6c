"""The append-only event log and the consumers' offsets.

Ingest depends only on :class:`~attune.log.protocol.EventLog`; consumers only on reading by
offset. Kafka or Redis Streams logs implement the same protocol.
"""
