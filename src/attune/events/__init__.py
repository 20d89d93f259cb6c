"""Events: the one format every source is turned into before it reaches the log."""
