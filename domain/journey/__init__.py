"""The journey of an assisted return, from referral to outcome: its events, messages,
vocabulary, configuration and decider, the same module names as ``domain.reintegration``,
and the field's rules (``policies``, ``road``)."""
