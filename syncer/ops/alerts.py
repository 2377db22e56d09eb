"""Alerts: tell a person when the unattended daemon is unwell.

After each run the daemon asks `Alerts.after_run` whether to alert: a failed run, a
connector that has failed `failed_runs_in_a_row` runs in a row (again at every further
multiple), a run that finished with write failures of a kind the run before did not have
(both with `on_failed_run`), open dead letters rising above `dead_letters_above`, or
MQLs the speed-to-lead SLA reassigned, handed to the queue or recycled in the run (each
person named with the old owner, the new one and the SLA missed). Write
failures are stated by cause and field ("37 bad picklist value errors on Industry
(salesforce)", see syncer/domain/errors.py), with the fix for the largest. An alert is one short
message POSTed as `{"text": ...}`, the Slack incoming-webhook format (Mattermost, Rocket.Chat
and Teams workflows accept it too).

The webhook URL is a secret (Slack's path is the credential): it is read from a secret
reference and never logged; a failure to deliver is logged by kind and status only, retried
a couple of times, and never raised into the daemon.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from urllib.parse import urlsplit

import requests
import structlog
from sqlalchemy.exc import SQLAlchemyError
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from syncer.domain.config import AlertsConfig, LoadedConfig
from syncer.domain.config_base import ConfigError
from syncer.domain.errors import FIXES, OTHER, failure_lines, flatten
from syncer.domain.secrets import resolve_secret
from syncer.observe.logs import redact_text
from syncer.observe.metrics import dead_letter_counts
from syncer.store import routing as routing_store
from syncer.store.repository import Store
from syncer.store.runs import RunRecord

log = structlog.get_logger(__name__)

#: Statuses worth another attempt: rate limited or the receiver failing.
_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class _RetryableStatus(Exception):
    """The receiver answered with a status worth another attempt (`_RETRY_STATUSES`)."""

    def __init__(self, retry_after: float | None) -> None:
        super().__init__("webhook answered with a retryable status")
        self.retry_after = retry_after


class WebhookSender:
    """POSTs `{"text": message}` to one webhook, with a few retries; never raises."""

    def __init__(self, url: str, *, attempts: int = 3, timeout: float = 5.0,
                 backoff: float = 1.0, sleep: Callable[[float], None] = time.sleep) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(["alerts.webhook: the secret is not an http(s) URL. Fix: put the "
                               "full incoming-webhook URL (https://hooks.slack.com/services/...) "
                               "in the variable or file it names"])
        self._url = url
        self._attempts = max(1, attempts)
        self._timeout = timeout
        self._backoff = backoff
        self._sleep = sleep
        self._session = requests.Session()

    def __repr__(self) -> str:  # never the URL
        return "WebhookSender(<webhook>)"

    def send(self, text: str, kind: str = "alert") -> bool:
        """Deliver one message; True when the receiver accepted it (2xx).

        Retried by tenacity (the one retry layer, as in connectors/retry.py): a dropped
        connection or a status in `_RETRY_STATUSES` waits `backoff * 2**(attempt - 1)`
        seconds (longer if Retry-After asks, up to 30) and tries again; any other status
        ends at once."""
        retrying = Retrying(
            stop=stop_after_attempt(self._attempts), wait=self._wait, sleep=self._sleep,
            retry=retry_if_exception_type((requests.RequestException, _RetryableStatus)),
            reraise=True)
        delivered = False
        try:
            for attempt in retrying:
                with attempt:
                    delivered = self._post(text, kind, attempt.retry_state.attempt_number)
        except (requests.RequestException, _RetryableStatus):
            delivered = False
        if not delivered:
            log.error("alert.not_delivered", kind=kind, attempts=self._attempts)
        return delivered

    def _post(self, text: str, kind: str, attempt: int) -> bool:
        """One POST: True when accepted, False when refused for good; raises to retry."""
        try:
            response = self._session.post(self._url, json={"text": text},
                                          timeout=self._timeout)
        except requests.RequestException as error:
            log.warning("alert.attempt_failed", kind=kind, attempt=attempt,
                        error=type(error).__name__)
            raise
        if 200 <= response.status_code < 300:
            log.info("alert.sent", kind=kind, attempts=attempt)
            return True
        log.warning("alert.attempt_failed", kind=kind, attempt=attempt,
                    status=response.status_code)
        if response.status_code not in _RETRY_STATUSES:
            return False
        retry_after = response.headers.get("Retry-After", "")
        raise _RetryableStatus(float(retry_after) if retry_after.isdigit() else None)

    def _wait(self, state: RetryCallState) -> float:
        """Exponential backoff, or the receiver's Retry-After when longer (at most 30 s)."""
        wait: float = self._backoff * 2.0 ** (state.attempt_number - 1)
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, _RetryableStatus) and error.retry_after is not None:
            wait = max(wait, min(error.retry_after, 30.0))
        return wait

    def close(self) -> None:
        self._session.close()


class Alerts:
    """Decides after each run what to alert about, and sends it."""

    def __init__(self, config: AlertsConfig, sender: WebhookSender,
                 dead_letters: Callable[[Store], Mapping[str, int]] = dead_letter_counts
                 ) -> None:
        """`dead_letters` reads open dead letters per connector from the store."""
        self.config = config
        self.sender = sender
        self._dead_letters = dead_letters
        self._dead_letters_seen: int | None = None
        #: runs whose SLA breaches were alerted already (a run is reported per connector)
        self._sla_alerted: set[str] = set()

    @classmethod
    def from_config(cls, loaded: LoadedConfig) -> Alerts | None:
        """None when no webhook is configured. Raises ConfigError if its secret is unset."""
        config = loaded.config.alerts
        if config.webhook is None:
            return None
        url = resolve_secret(config.webhook, f"{loaded.path}: alerts.webhook")
        return cls(config, WebhookSender(url, timeout=config.timeout_seconds))

    def after_run(self, store: Store, connectors: Sequence[str],
                  error: BaseException | None = None) -> list[str]:
        """Send the alerts this run calls for; return their messages (sent or not)."""
        messages = [m for m in (*self._run_alerts(store, connectors, error),
                                self._dead_letter_alert(store),
                                self._sla_alert(store, connectors)) if m]
        for kind, text in messages:
            self.sender.send(text, kind)
        return [text for _, text in messages]

    def _run_alerts(self, store: Store, connectors: Sequence[str],
                    error: BaseException | None) -> list[tuple[str, str]]:
        names = ", ".join(connectors)
        try:
            runs = [r for name in connectors for r in store.runs(
                1, connector=name, finished=True, skipped=False)]
            streaks = {name: store.failure_streak(name) for name in connectors}
        except SQLAlchemyError:
            runs, streaks = [], {}
        failed = [r for r in runs if r.status == "failed"]
        if error is None and not failed:
            return self._partial_alerts(store, runs)
        reason = (failed[0].error if failed and failed[0].error else
                  f"{type(error).__name__}: {error}" if error else "unknown error")
        reason = redact_text(reason)[:300]
        alerts: list[tuple[str, str]] = []
        every = self.config.failed_runs_in_a_row
        for name, streak in streaks.items():
            if streak and streak % every == 0:
                alerts.append(("failing_in_a_row", f"syncer: connector {name} has failed "
                               f"{streak} runs in a row. Last error: {reason}"))
        if not alerts and self.config.on_failed_run:
            run_id = f" (run {failed[0].run_id})" if failed else ""
            writes = _causes_text(flatten(failed[0].stats.get("failures_by_field"))
                                  ) if failed else ""
            alerts.append(("run_failed", f"syncer: sync of {names} failed{run_id}: {reason}"
                           + (f". Write failures: {writes}" if writes else "")))
        return alerts

    def _partial_alerts(self, store: Store, runs: Sequence[RunRecord]
                        ) -> list[tuple[str, str]]:
        """A run that finished with write failures alerts when a failure group (connector,
        cause, field) appears that the connector's run before did not have: a new
        problem is news, the same 37 picklist errors every 15 minutes are not."""
        if not self.config.on_failed_run:
            return []
        alerts: list[tuple[str, str]] = []
        for run in {r.run_id: r for r in runs if r.status == "partial"}.values():
            groups = flatten(run.stats.get("failures_by_field"))
            try:
                before = {name: store.runs(2, connector=name, finished=True,
                                           skipped=False)[1:]
                          for name in run.connectors}
            except SQLAlchemyError:
                before = {}
            seen = {key for name, earlier in before.items() for r in earlier
                    for key in flatten(r.stats.get("failures_by_field")) if key[0] == name}
            if not groups or set(groups) <= seen:
                continue
            alerts.append(("run_partial", f"syncer: sync of {', '.join(run.connectors)} "
                           f"finished with write failures (run {run.run_id}): "
                           f"{_causes_text(groups)}. The records wait in "
                           "`syncer dead-letters`."))
        return alerts

    def _dead_letter_alert(self, store: Store) -> tuple[str, str] | None:
        threshold = self.config.dead_letters_above
        if threshold is None:
            return None
        counts = self._dead_letters(store)
        total = sum(counts.values())
        crossed = total > threshold and (self._dead_letters_seen is None
                                         or self._dead_letters_seen <= threshold)
        self._dead_letters_seen = total
        if not crossed:
            return None
        detail = ", ".join(f"{name} {count}" for name, count in sorted(counts.items()))
        return ("dead_letters", f"syncer: {total} dead letters waiting (alert above "
                f"{threshold}): {detail}. List them with `syncer dead-letters`.")

    def _sla_alert(self, store: Store, connectors: Sequence[str],
                   shown: int = 10) -> tuple[str, str] | None:
        """One message per run in which the speed-to-lead SLA moved people: each named
        with the owner who did not work them, where they went and the SLA (the reason
        stored with the assignment), the first `shown` of them."""
        try:
            runs = {r.run_id for name in connectors for r in store.runs(
                1, connector=name, finished=True, skipped=False)} - self._sla_alerted
            events = routing_store.sla_events(store, sorted(runs))
        except SQLAlchemyError:
            return None
        self._sla_alerted |= runs
        if not events:
            return None
        lines = [f"{e['person_key']}: {e['reason']}" for e in events[:shown]]
        more = f" (and {len(events) - shown} more: `syncer report`)" \
            if len(events) > shown else ""
        return ("sla_breach", f"syncer: {len(events)} MQLs not worked within the "
                f"speed-to-lead SLA{more}. " + " | ".join(lines))

    def close(self) -> None:
        self.sender.close()


def _causes_text(groups: Mapping[tuple[str, str, str], int], top: int = 3) -> str:
    """The top failure groups in words, and how to fix the largest one."""
    if not groups:
        return ""
    (_, cause, _), _count = min(groups.items(), key=lambda item: (-item[1], item[0]))
    return f"{', '.join(failure_lines(groups, top))}. Fix: {FIXES.get(cause, FIXES[OTHER])}"
