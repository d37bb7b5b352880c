"""The pure model of an assisted return: events, the state machines of the journey and of
the follow-up, and the field's rules. No I/O.

Section numbers in comments (§4.3.3, rec. 11) point into the evaluation the field's rules
come from: Sida Evaluation 03/37, the IOM programme of assistance for the protection,
return and reintegration of trafficked women and children in the Western Balkans
(2001–2002); docs/sources.md says more.
"""
