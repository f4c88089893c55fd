"""DIMSE in: the C-STORE SCP (``manage.py storescp``)."""
