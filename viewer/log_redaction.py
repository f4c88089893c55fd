"""Keep patient IDs out of the operations log.

Django logs the path of every 4xx and 5xx answer ("Forbidden: /api/audit/patients/...")
and runserver logs every request line; the audit API carries a Patient ID in its path.
This filter, set on those loggers in settings.LOGGING, replaces that path segment before
any handler sees the record.
"""

from __future__ import annotations

import logging
import re

PATIENT_PATH = re.compile(r"(/api/audit/patients/)[^\s?\"']*")


class RedactPatientPaths(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if PATIENT_PATH.search(message):
            record.msg = PATIENT_PATH.sub(r"\1[redacted]", message)
            record.args = ()
        return True
