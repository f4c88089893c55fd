"""Prior studies: the earlier studies of the same patient, among those a session may see.

A prior is a study of the same Patient row (Patient ID within its issuer, (0010,0020) and
(0010,0021)) whose (0008,0020) Study Date is earlier. Studies without a date have no
priors and are nobody's prior: their place in time is unknown.
"""

from __future__ import annotations

from django.db.models import OuterRef, QuerySet, Subquery

from viewer.models import Study


def with_latest_prior(studies: QuerySet[Study], visible: QuerySet[Study]) -> QuerySet[Study]:
    """``studies`` annotated with ``prior_uid``: the Study Instance UID of the latest
    earlier study of the same patient in ``visible``, or None."""
    earlier = visible.filter(
        patient=OuterRef("patient"), study_date__lt=OuterRef("study_date")
    ).order_by("-study_date", "-study_time", "-id")
    return studies.annotate(prior_uid=Subquery(earlier.values("study_instance_uid")[:1]))
