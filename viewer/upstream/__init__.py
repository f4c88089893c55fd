"""Loupe as a client of upstream DICOMweb archives (a PACS behind Loupe).

``config`` parses LOUPE_UPSTREAM_DICOMWEB (no Django imports: settings use it);
``client`` speaks QIDO-RS and WADO-RS to one archive over ``requests``. The verbs that
change state (fetching a study into the archive, the bounded cache) are in
``viewer.services.upstream``.
"""
