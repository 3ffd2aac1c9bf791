"""What issue 15 computes, for the sources page: which points to label next
(:meth:`Source.suggest`) and cover with its interval (:meth:`Source.cover` with
``intervals=True``), as JSON. Both only read the project; the work stays in the library.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from quadrat._util import jsonable
from quadrat.service.ui.routes import State, User, http_errors, require_role, role_of
from quadrat.store import annotate
from quadrat.store import queries as store_queries
from quadrat.store.schema import Role

if TYPE_CHECKING:
    from quadrat.service.ui.state import UiState
    from quadrat.workflow.source import Source

router = APIRouter(prefix="/ui")


def within_limit(value: int, maximum: int, name: str, limit: str) -> int:
    """``value`` when it is at most the server's ``limit`` (``ServiceSettings``), else 422
    naming the limit, as the deploy API's analysis endpoints do."""
    if value > maximum:
        raise HTTPException(
            422, detail=f"{name} may be at most {maximum} on this server (limit {limit})."
        )
    return value


def source_of(state: UiState, source_id: int) -> Source:
    """The library's :class:`Source` for a source id (after the caller checked the role)."""
    from quadrat.workflow.project import Project

    with state.store.session() as session:
        name = store_queries.source_by_id(session, source_id).name
    return Project(state.store).source(name)


@router.get("/api/sources/{source_id}/suggest")
def suggest(
    source_id: int,
    user: User,
    state: State,
    n: Annotated[int, Query(ge=1)] = 20,
    strategy: Annotated[str, Query()] = "margin",
) -> dict[str, Any]:
    """The ``n`` points to label next, most wanted first (annotators and up: it is a work
    list). Each row is :meth:`Source.suggest`'s, plus ``image_id`` for the page's link."""
    require_role(state, user, source_id, Role.ANNOTATOR)
    within_limit(n, state.settings.max_suggest, "n", "max_suggest")
    with http_errors():
        table = source_of(state, source_id).suggest(n, strategy=strategy)
        with state.store.session() as session:
            image_ids = [annotate.point_source(session, int(p))[1] for p in table["point_id"]]
    rows = jsonable(table.to_dict(orient="records"))
    for row, image_id in zip(rows, image_ids, strict=True):
        row["image_id"] = image_id
    return {"strategy": strategy, "points": rows}


@router.get("/api/sources/{source_id}/cover")
def cover(
    source_id: int,
    user: User,
    state: State,
    level: Annotated[str, Query()] = "source",
    corrected: Annotated[str, Query()] = "none",
    confidence: Annotated[float, Query(gt=0, lt=1)] = 0.95,
    replicates: Annotated[int, Query(ge=1)] = 1000,
    seed: Annotated[int, Query()] = 0,
) -> dict[str, Any]:
    """Cover with its bootstrap interval (viewers and up), per ``source``, ``image`` or
    ``site:COLUMN``, naive or ``corrected`` (``acc``, ``pacc``): the rows of
    ``Source.cover(intervals=True, ...)`` and, per label, where its columns are."""
    role_of(state, user, source_id)
    most = state.settings.max_bootstrap_replicates
    within_limit(replicates, most, "replicates", "max_bootstrap_replicates")
    with http_errors():
        table = source_of(state, source_id).cover(
            intervals=True,
            level=level,
            corrected=corrected,
            confidence=confidence,
            replicates=replicates,
            seed=seed,
        )
    labels = [str(c)[: -len(" estimate")] for c in table.columns if str(c).endswith(" estimate")]
    return {
        "level": level,
        "corrected": corrected,
        "confidence": confidence,
        "replicates": replicates,
        "labels": labels,
        "columns": [str(c) for c in table.columns],
        "rows": jsonable(table.to_dict(orient="records")),
        "indistinguishable": jsonable(table.attrs.get("indistinguishable", [])),
    }
