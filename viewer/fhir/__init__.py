"""FHIR R4 ImagingStudy and Endpoint under ``/fhir/`` (``viewer.fhir.views``)."""
