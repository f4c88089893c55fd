"""Prior studies: the earlier studies of the same person, among those a session may see.

The same person is the same ``Patient.person_key``: the Patient ID within its issuer,
(0010,0020) and (0010,0021) (or the (0010,0024) qualifiers' Universal Entity ID), and every
identity linked to it through the cross-reference of identities or an indexed (0010,1002)
Other Patient ID (``viewer.services.identity``). A name never makes anyone the same person.

Earlier compares (0008,0020) *Study Date* and (0008,0030) *Study Time*: a study of an
earlier date, or of the same date and an earlier time (both times known). Studies without
a date have no priors and are nobody's prior: their place in time is unknown; so are, on
the current study's date, studies whose time is unknown on either side.

The relevant prior, the one chosen to compare with, is the latest earlier study that
shares an image modality with the current study ((0008,0061) *Modalities in Study*, without
the modalities that carry no images: SR, PR, KO, SEG ...) and whose (0018,0015) *Body Part
Examined* of its image series overlaps the current study's, case-insensitively; where
either side records no body part, the modality alone decides. At most one prior is
relevant.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.db.models import F, Q, QuerySet

from viewer.models import Series, Study
from viewer.services import identity

# Modalities whose series carry no images to compare (PS3.3 C.7.3.1.1.1, CID 33).
NOT_IMAGES = frozenset(
    {
        "AU",
        "DOC",
        "ECG",
        "EPS",
        "FID",
        "HD",
        "KO",
        "PLAN",
        "PR",
        "REG",
        "RESP",
        "RTDOSE",
        "RTPLAN",
        "RTRECORD",
        "RTSTRUCT",
        "RWV",
        "SEG",
        "SMR",
        "SR",
        "TEXT",
    }
)


@dataclass(frozen=True)
class Prior:
    """An earlier study of the same person. ``relevant``: the one chosen to compare with;
    ``linked``: found through another identity than the current study's own (a link or an
    Other Patient ID). ``modalities`` and ``body_parts`` (upper case, the most common
    first) are those of its image series."""

    study: Study
    relevant: bool
    linked: bool
    modalities: tuple[str, ...] = field(default=(), compare=False)
    body_parts: tuple[str, ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class _Facts:
    modalities: frozenset[str]
    body_parts: tuple[str, ...]


def image_modalities(study: Study) -> frozenset[str]:
    """The modalities of ``study`` that carry images."""
    return (
        frozenset(m.strip().upper() for m in study.modalities_in_study.split("\\") if m.strip())
        - NOT_IMAGES
    )


def _facts(studies: Iterable[Study]) -> dict[int, _Facts]:
    """Image modalities and body parts of each study (one query for their series)."""
    by_id = {s.pk: s for s in studies}
    parts: dict[int, Counter[str]] = {pk: Counter() for pk in by_id}
    ids = list(by_id)
    for start in range(0, len(ids), 500):
        for study_id, modality, body_part in Series.objects.filter(
            study_id__in=ids[start : start + 500]
        ).values_list("study_id", "modality", "body_part_examined"):
            if modality.strip().upper() in NOT_IMAGES or not body_part.strip():
                continue
            parts[study_id][body_part.strip().upper()] += 1
    return {
        pk: _Facts(
            image_modalities(study),
            tuple(p for p, _ in sorted(parts[pk].items(), key=lambda kv: (-kv[1], kv[0]))),
        )
        for pk, study in by_id.items()
    }


def _key_of(study: Study) -> str:
    patient = study.patient
    return patient.person_key or identity.person_key([identity.identity_of(patient)])


def _is_earlier(candidate: Study, current: Study) -> bool:
    if candidate.study_date is None or current.study_date is None:
        return False
    if candidate.study_date != current.study_date:
        return candidate.study_date < current.study_date
    if candidate.study_time is None or current.study_time is None:
        return False
    return candidate.study_time < current.study_time


def _earlier_q(date: dt.date, time: dt.time | None) -> Q:
    same_day = Q(study_date=date, study_time__lt=time) if time is not None else Q(pk__in=[])
    return Q(study_date__lt=date) | same_day


def _newest_first(studies: QuerySet[Study]) -> QuerySet[Study]:
    return studies.order_by(
        F("study_date").desc(nulls_last=True), F("study_time").desc(nulls_last=True), "-id"
    )


def _is_relevant(current: _Facts, prior: _Facts) -> bool:
    if not current.modalities & prior.modalities:
        return False
    if not current.body_parts or not prior.body_parts:
        return True
    return bool(set(current.body_parts) & set(prior.body_parts))


def _linked(prior: Study, current: Study) -> bool:
    return not identity.spellings(prior.patient) & identity.spellings(current.patient)


def _priors(current: Study, candidates: Sequence[Study], facts: dict[int, _Facts]) -> list[Prior]:
    """``candidates`` (newest first, the same person) turned into the priors of
    ``current``: the earlier ones, the first fitting one relevant."""
    chosen = False
    priors: list[Prior] = []
    for candidate in candidates:
        if candidate.pk == current.pk or not _is_earlier(candidate, current):
            continue
        relevant = not chosen and _is_relevant(facts[current.pk], facts[candidate.pk])
        chosen = chosen or relevant
        priors.append(
            Prior(
                study=candidate,
                relevant=relevant,
                linked=_linked(candidate, current),
                modalities=tuple(sorted(facts[candidate.pk].modalities)),
                body_parts=facts[candidate.pk].body_parts,
            )
        )
    return priors


def priors_of(study: Study, visible: QuerySet[Study]) -> list[Prior]:
    """The earlier studies of ``study``'s person within ``visible``, newest first; at most
    one of them relevant. A study without a date has none."""
    if study.study_date is None:
        return []
    candidates = list(
        _newest_first(
            visible.filter(_earlier_q(study.study_date, study.study_time))
            .filter(patient__person_key=_key_of(study))
            .exclude(pk=study.pk)
            .select_related("patient")
        )
    )
    facts = _facts([study, *candidates])
    return _priors(study, candidates, facts)


def relevant_prior(study: Study, visible: QuerySet[Study]) -> Study | None:
    """The prior chosen to compare ``study`` with, or None."""
    return next((p.study for p in priors_of(study, visible) if p.relevant), None)


def relevant_priors(studies: Sequence[Study], visible: QuerySet[Study]) -> dict[int, Study]:
    """The relevant prior of each of ``studies`` (by primary key; absent: none), in a
    bounded number of queries: one for the candidates of all their persons, one for the
    series of all. ``studies`` need their ``patient`` loaded (select_related)."""
    dated = [s for s in studies if s.study_date is not None]
    if not dated:
        return {}
    latest = max(s.study_date for s in dated if s.study_date is not None)
    keys = {_key_of(s) for s in dated}
    candidates = list(
        _newest_first(
            visible.filter(patient__person_key__in=keys, study_date__lte=latest).select_related(
                "patient"
            )
        )
    )
    facts = _facts({s.pk: s for s in [*dated, *candidates]}.values())
    by_key: dict[str, list[Study]] = {}
    for candidate in candidates:
        by_key.setdefault(candidate.patient.person_key, []).append(candidate)
    chosen: dict[int, Study] = {}
    for current in dated:
        for prior in _priors(current, by_key.get(_key_of(current), []), facts):
            if prior.relevant:
                chosen[current.pk] = prior.study
                break
    return chosen
