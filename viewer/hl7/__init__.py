"""HL7 v2 in: ADT link, unlink and merge messages (A24, A37, A40) read with the ``hl7``
library, turned into calls of :mod:`viewer.services.identity` and nothing else.

- :mod:`viewer.hl7.adt`: ER7 text -> an :class:`~viewer.hl7.adt.AdtMessage` (its typed
  actions) or a refusal that says why; applying the actions through the service.
- :mod:`viewer.hl7.mllp`: the asyncio MLLP listener behind ``manage.py hl7_listener``,
  which answers every message with an ACK (AA, or AE/AR with the reason).
"""
