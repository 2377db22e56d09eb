"""Which qualification model syncs use: publishing, rolling back, and the active model.

The rules, in the order `active_model` applies them:

1. The store's newest publication names the active model (syncer/store/model_versions.py);
   its text is in the store, so a rollback needs no file on disk.
2. Nothing published yet: the sync publishes the model file named in the config.
3. The newest row is a publish: when the file's model differs from it (a different
   version, i.e. rules changed, not only comments), the sync publishes the file. Editing
   the file and letting the next sync pick it up keeps working.
4. The newest row is a rollback: its version stays active ("pinned") and the file is not
   published, whatever it holds; a sync logs `model.file_not_published` when the file
   differs. `syncer model publish` ends the pin (it appends a publish row).
5. A file that does not validate fails the sync (rule 2 or 3), except while pinned, and
   except in the daemon (`strict=False`), which keeps the active model and logs
   `model.file_invalid` with every problem.

Publishing and rolling back, as `syncer model publish` / `rollback` do them:

- Publishing a file whose model is the active version appends nothing (there is no new
  version to make active, and a row would only muddle what a rollback goes back to). A
  rollback's pin then stays: the next publish of a *changed* file ends it.
- A rollback means "back to what was active before the current version". The history is
  read as a stack of versions (`version_stack`): a publish pushes its version, a rollback
  pops back to the version it restores. So rolling back twice goes back two versions in
  the order they were active, then stops with "nothing before it" at the first one; a
  publish after a rollback pushes onto what the rollback left, so rolling that back
  returns to the rolled-back-to version, never to the bad one a rollback undid.
  `--to VERSION` names any published version: one still on the stack pops back to it;
  one a rollback undid is pushed again (rolling back from it returns to where you were).

Every publish or rollback that changes the active version resets the `rescored.*`
counters in the same transaction, so the next sync re-decides everyone under it.
"""

from __future__ import annotations

import pathlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import structlog
import yaml

from syncer.domain.config import LoadedConfig
from syncer.domain.failures import BadInput
from syncer.qualify import Model, ModelError, load_model, parse_model
from syncer.run.pipeline import RESCORED_PREFIX
from syncer.store import model_versions as versions
from syncer.store.model_versions import PUBLISH, ROLLBACK, Publication, RollbackNote
from syncer.store.repository import Store

log = structlog.get_logger(__name__)


class PublicationError(BadInput, ValueError):
    """A publish or rollback that cannot be done; the message says why and what to do."""


@dataclass(frozen=True)
class ActiveModel:
    """The model a sync uses. `rollback`: set while a rollback is in effect (cite it in
    the audit); `published`: the row this call appended when it published the file."""

    model: Model
    rollback: RollbackNote | None = None
    published: Publication | None = None


def read_model_file(path: pathlib.Path) -> tuple[Model, str]:
    """The model file validated, and its text as read (what a publication keeps)."""
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
        return parse_model(data if isinstance(data, dict) else {}, str(path)), text
    except (OSError, UnicodeDecodeError, yaml.YAMLError, ModelError) as error:
        load_model(path)  # reports the problems with line numbers, as check-config does
        raise ModelError(str(path), [f"the file changed while it was read ({error})"]
                         ) from None


def stored_model(publication: Publication) -> Model:
    """The model a publication holds. Raises PublicationError when it no longer validates
    (a syncer upgrade tightened the schema): publish a model that does."""
    source = f"published model {publication.version} (#{publication.id})"
    try:
        data = yaml.safe_load(publication.content)
        model = parse_model(data if isinstance(data, dict) else {}, source)
    except (yaml.YAMLError, ModelError) as error:
        raise PublicationError(f"{source} no longer validates: {error}. Fix: run `syncer "
                               "model publish` with a model file that `syncer check-config` "
                               "accepts") from None
    if model.version != publication.version:
        log.warning("model.version_changed", published=publication.version,
                    now=model.version, reason="this syncer version reads the text with "
                                              "other defaults")
    return model


def active_model(store: Store, loaded: LoadedConfig, now: datetime, *,
                 strict: bool = True) -> ActiveModel:
    """The model a sync uses now, publishing the config's model file when the rules in
    the module docstring say so (`now`: the publication's time)."""
    path = loaded.model_path
    problem: ModelError | None = None
    try:
        model, text = read_model_file(path)
    except ModelError as error:
        problem = error
    current = versions.active(store)
    if current is not None and current.pins:
        if problem is not None:
            log.warning("model.file_invalid", path=str(path), active=current.version,
                        problems=list(problem.problems), pinned=True)
        elif model.version != current.version:
            log.warning("model.file_not_published", path=str(path), file=model.version,
                        active=current.version, rolled_back_at=current.at.isoformat(),
                        fix="run `syncer model publish` to use the file's model")
        return ActiveModel(stored_model(current), versions.rollback_of(current))
    if problem is not None:
        if strict or current is None:
            raise problem
        log.error("model.file_invalid", path=str(path), active=current.version,
                  problems=list(problem.problems), pinned=False)
        return ActiveModel(stored_model(current))
    if current is not None and current.version == model.version:
        return ActiveModel(model)
    row = _append(store, now, PUBLISH, model.version, text,
                  f"published by a sync from {path.name}", expect=current)
    if row is None:  # another process published first: take what it published
        return active_model(store, loaded, now, strict=strict)
    log.info("model.published", version=model.version,
             previous=current.version if current else None, automatic=True)
    return ActiveModel(model, published=row)


def publish(store: Store, loaded: LoadedConfig, now: datetime, note: str | None = None
            ) -> tuple[Publication | None, Publication | None]:
    """Publish the config's model file: (the row appended, or None when the file's version
    is already active, pinned or not: then nothing is appended; the row that was active
    before)."""
    model, text = read_model_file(loaded.model_path)
    current = versions.active(store)
    if current is not None and current.version == model.version:
        return None, current
    row = _append(store, now, PUBLISH, model.version, text, note, expect=current)
    if row is None:
        raise PublicationError("another process published a model at the same moment; "
                               "check `syncer model history` and publish again if needed")
    log.info("model.published", version=model.version,
             previous=current.version if current else None, automatic=False)
    return row, current


def rollback(store: Store, now: datetime, to: str | None = None, note: str | None = None
             ) -> Publication:
    """Make an earlier published version active again (pinned until the next publish):
    `to` names it (a version, its hash or a unique hash prefix); by default the version
    that was active before the current one (`version_stack`), so each further rollback
    goes one further back, and a rollback never returns to a version a rollback undid."""
    rows = versions.history(store)
    if not rows:
        raise PublicationError("no model has been published yet, so there is nothing to "
                               "roll back to. Fix: run a sync or `syncer model publish`")
    current = rows[0]
    target = _named(rows, to) if to is not None else _previous(rows)
    if target.version == current.version:
        raise PublicationError(f"{current.version} is already the active model")
    row = _append(store, now, ROLLBACK, target.version, target.content, note,
                  expect=current)
    if row is None:
        raise PublicationError("another process published a model at the same moment; "
                               "check `syncer model history` and roll back again if needed")
    log.warning("model.rolled_back", version=target.version, previous=current.version)
    return row


def version_stack(rows: Sequence[Publication]) -> list[str]:
    """The versions a rollback walks back through, oldest first; the last is the active
    one. `rows` newest first, as `versions.history` returns them. A publish pushes its
    version (a publish of the version already on top, which older syncers appended to end
    a pin, pushes nothing); a rollback pops back to its version when it is on the stack
    below the top, and pushes it otherwise (a `--to` a version a rollback had undone)."""
    stack: list[str] = []
    for row in reversed(rows):
        below = [i for i, version in enumerate(stack[:-1]) if version == row.version]
        if row.action == ROLLBACK and below:
            del stack[below[-1] + 1:]
        elif not stack or stack[-1] != row.version:
            stack.append(row.version)
    return stack


def _previous(rows: Sequence[Publication]) -> Publication:
    """The newest row of the version active before the current one (rows newest first)."""
    stack = version_stack(rows)
    if len(stack) < 2:
        # The stack's bottom is always the first version ever published.
        raise PublicationError(f"{rows[0].version} is the first published model: nothing "
                               "was active before it, so there is nothing to roll back to "
                               "(`--to VERSION` makes any published version active again; "
                               "see `syncer model history`)")
    return next(row for row in rows if row.version == stack[-2])


def _named(rows: Sequence[Publication], name: str) -> Publication:
    """The newest row of the version `name` names: exact, its hash, or a hash prefix of
    at least 4 characters that only one published version has."""
    wanted = name.strip()
    published: dict[str, Publication] = {}
    for row in rows:
        published.setdefault(row.version, row)
    if wanted in published:
        return published[wanted]
    digest = wanted.rsplit("@", 1)[-1]
    matches = [v for v in published if len(digest) >= 4
               and v.rsplit("@", 1)[-1].startswith(digest)
               and ("@" not in wanted or v.startswith(wanted.rsplit("@", 1)[0] + "@"))]
    if len(matches) == 1:
        return published[matches[0]]
    known = ", ".join(published)
    if matches:
        raise PublicationError(f"'{name}' matches {', '.join(matches)}. Fix: give more of "
                               "the hash")
    raise PublicationError(f"no published model '{name}'. Published: {known} (see `syncer "
                           "model history`)")


def _append(store: Store, now: datetime, action: str, version: str, content: str,
            note: str | None, *, expect: Publication | None) -> Publication | None:
    """Append under the publication lock, if the active row is still `expect` (None when
    another process appended meanwhile). The rescored counters are reset in the same
    transaction when the active version changes."""
    with store.transaction() as tx:
        versions.lock(store, tx, now)
        head = versions.newest(tx)
        if (head.id if head else None) != (expect.id if expect else None):
            return None
        changes = head is None or head.version != version
        return versions.append(tx, at=now, action=action, version=version,
                               previous_version=head.version if head else None,
                               content=content, note=note,
                               reset_counters=[RESCORED_PREFIX] if changes else [])
