"""The follow-up after arrival (reintegration): its events, messages, vocabulary,
configuration and decider, the same module names as ``domain.journey``."""
