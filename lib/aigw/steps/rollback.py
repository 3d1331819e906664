"""Notebook 05: the contract's rollback, with a snapshot first and a dry run unless confirmed.

``take_snapshot`` -> ``plan_rollback`` -> ``confirm`` -> ``apply_rollback`` -> ``verify_rollback``.

* The snapshot goes into the run folder before anything is deleted: the gateway's settings, its provider
  configs (ids, slugs, aliases, secret ids; never a key or a key preview), the metadata of the secrets the
  runbook created (never a value: Cloudflare never returns one), and the gateway's logs as Parquet.
* Deleted, in this order, and only what the parameters choose: the provider configs, the gateway, the
  secrets this runbook created (named ``{gateway_id}_{provider}_{alias}``, nothing else), and the store
  that held them once it is empty. Every delete treats "already gone" as done, so a rollback that
  stopped half-way converges when run again, and a second rollback says "nothing to delete".
* Destructive steps run only when ``confirm_delete`` equals the gateway id. In JupyterLab a confirm
  widget (text field + button) asks for it; under papermill / nbval the parameter decides. Otherwise it
  is a dry run that lists what would be deleted.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from aigw.cloudflare import Gateway, ProviderConfig, Store, StoreSecret
from aigw.config import PROVIDERS
from aigw.errors import CloudflareError, NotFoundError, PermissionDeniedError
from aigw.evidence import Check
from aigw.gateway import DEFAULT_MODELS, ProbeResult
from aigw.log_systems import fetch_gateway_logs
from aigw.logpush import LogpushApi, LogpushJob, job_name
from aigw.logs_frame import build_frame, export_parquet
from aigw.session import Session
from aigw.steps import checks_table, markdown_table

__all__ = [
    "SNAPSHOT_DIR",
    "Confirmation",
    "RollbackItem",
    "RollbackPlan",
    "RollbackResult",
    "RollbackVerification",
    "Snapshot",
    "apply_rollback",
    "confirm",
    "plan_rollback",
    "runbook_secret_pattern",
    "take_snapshot",
    "verify_rollback",
]

SNAPSHOT_DIR: Final = "05_rollback_snapshot"
#: Provider-config fields kept in the snapshot: everything but the key's preview.
_CONFIG_FIELDS: Final = ("id", "gateway_id", "provider_slug", "alias", "default_config", "secret_id", "modified_at",
                         "rate_limit", "rate_limit_period")
_SECRET_FIELDS: Final = ("id", "name", "store_id", "status", "scopes", "created", "modified")

Kind = Literal["logpush_job", "provider_config", "gateway", "secret", "store"]




def runbook_secret_pattern(gateway_id: str, aliases: Sequence[str] = ()) -> re.Pattern[str]:
    """The names of the secrets notebook 02 creates for ``gateway_id``: ``{gateway_id}_{provider}_{alias}``.

    ``aliases`` (from the gateway's provider configs) are matched exactly; any other alias only when it has
    no ``_``, so that ``gw_openai_x`` of gateway ``gw`` is never confused with a secret of a gateway
    ``gw_openai``.
    """
    # ASSUMPTION: an alias the runbook did not see in a provider config is letters, digits and '-' only.
    known = "|".join(re.escape(a) for a in sorted(set(aliases), key=len, reverse=True) if a)
    alias = f"(?:{known}|[A-Za-z0-9-]+)" if known else "[A-Za-z0-9-]+"
    providers = "|".join(re.escape(p) for p in PROVIDERS)
    return re.compile(f"^{re.escape(gateway_id)}_(?:{providers})_{alias}$")


def _config_record(config: ProviderConfig) -> dict[str, Any]:
    return {name: getattr(config, name) for name in _CONFIG_FIELDS}


def _secret_record(secret: StoreSecret) -> dict[str, Any]:
    record = {name: getattr(secret, name) for name in _SECRET_FIELDS}
    record["scopes"] = list(secret.scopes)
    return record


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write_json(path: Path, data: Any) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data, indent=1, sort_keys=True, default=str))
    partial.replace(path)


# --- what exists ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Found:
    gateway: Gateway | None
    configs: tuple[ProviderConfig, ...]
    secrets: tuple[StoreSecret, ...]
    stores: tuple[Store, ...]
    logpush_jobs: tuple[LogpushJob, ...] = ()


def _runbook_logpush_jobs(session: Session) -> tuple[LogpushJob, ...]:
    """The Logpush job 07 made for this gateway (by its name); none when the token may not read Logpush
    (a token without Logs Read cannot have made one either)."""
    name = job_name(session.settings.gateway_id)
    try:
        return tuple(j for j in LogpushApi(session.client).list_jobs() if j.name == name)
    except (PermissionDeniedError, NotFoundError):
        return ()


def _find(session: Session) -> _Found:
    """The gateway, its provider configs, and the runbook's secrets in any store of the account."""
    client = session.client
    gateway_id = session.settings.gateway_id
    gateway = client.find_gateway(gateway_id)
    configs: tuple[ProviderConfig, ...] = ()
    if gateway is not None:
        try:
            configs = tuple(client.list_provider_configs(gateway_id))
        except NotFoundError:
            configs = ()
    pattern = runbook_secret_pattern(gateway_id, [c.alias for c in configs])
    stores = tuple(client.list_stores())
    secrets: list[StoreSecret] = []
    for store in stores:
        secrets.extend(s for s in client.list_secrets(store.id, search=f"{gateway_id}_") if pattern.match(s.name))
    return _Found(gateway, configs, tuple(secrets), stores, _runbook_logpush_jobs(session))


# --- snapshot -------------------------------------------------------------------------------------------------


@dataclass
class Snapshot:
    """What the rollback will remove, as it was, in the run folder."""

    folder: Path
    gateway: dict[str, Any] | None
    provider_configs: list[dict[str, Any]]
    secrets: list[dict[str, Any]]
    logs: int | None
    logs_file: Path | None
    checks: list[Check] = field(default_factory=list)

    def _repr_markdown_(self) -> str:
        if self.gateway is None:
            head = f"**Snapshot** in `{self.folder}`: the gateway does not exist (already rolled back?)."
        else:
            head = (f"**Snapshot** in `{self.folder}`: gateway `{self.gateway.get('id')}` settings, "
                    f"{len(self.provider_configs)} provider config(s), {len(self.secrets)} secret(s) (names only), "
                    + ("logs not exported" if self.logs is None else f"{self.logs:,} log(s) in `{self.logs_file}`"))
        return head + "\n\n" + checks_table(self.checks)


def take_snapshot(session: Session, *, export_logs: bool = True) -> Snapshot:
    """Write the gateway's settings, provider configs (without secrets), the runbook's secrets' metadata
    and (``export_logs``) every log of the gateway into ``<run_dir>/05_rollback_snapshot/``."""
    folder = session.run_dir / SNAPSHOT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    found = _find(session)
    earlier = _read_json(folder / "gateway.json")
    if found.gateway is None and isinstance(earlier, dict):
        # A rollback re-run in the same run folder: the snapshot taken before the deletes is the one to keep.
        kept = Snapshot(folder, earlier, _read_json(folder / "provider_configs.json") or [],
                        _read_json(folder / "secrets.json") or [], None, None)
        kept.checks.append(Check(None, "snapshot before rollback", "pass",
                                 f"gateway {session.settings.gateway_id} is gone; the snapshot taken before it was "
                                 f"deleted stays in {SNAPSHOT_DIR}/"))
        return kept
    gateway = dict(found.gateway.raw) if found.gateway is not None else None
    configs = [_config_record(c) for c in found.configs]
    secrets = [_secret_record(s) for s in found.secrets]
    _write_json(folder / "gateway.json", gateway)
    _write_json(folder / "provider_configs.json", configs)
    _write_json(folder / "secrets.json", secrets)
    logs: int | None = None
    logs_file: Path | None = None
    snapshot = Snapshot(folder, gateway, configs, secrets, None, None)
    if found.gateway is not None and export_logs:
        try:
            columns = fetch_gateway_logs(session.client, session.settings.gateway_id).columns
        except NotFoundError:
            columns = None
        if columns is not None:
            frame = build_frame(columns)
            logs_file = export_parquet(frame, folder / "logs.parquet")
            logs = len(frame)
    snapshot.logs, snapshot.logs_file = logs, logs_file
    if gateway is None:
        snapshot.checks.append(Check(None, "snapshot before rollback", "pass",
                                     f"nothing to snapshot: gateway {session.settings.gateway_id} does not exist"))
    else:
        saved = ["gateway settings", f"{len(configs)} provider configs", f"{len(secrets)} secret names"]
        if logs is not None:
            saved.append(f"{logs} logs")
        snapshot.checks.append(Check(None, "snapshot before rollback", "pass",
                                     f"{', '.join(saved)} saved in {SNAPSHOT_DIR}/"))
    return snapshot


# --- the plan -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RollbackItem:
    kind: Kind
    id: str
    name: str
    store_id: str | None = None
    note: str = ""


@dataclass
class RollbackPlan:
    """What the rollback deletes, in order; empty when there is nothing left to delete."""

    gateway_id: str
    items: list[RollbackItem]
    candidate_stores: list[Store]
    delete_empty_store: bool
    kept: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.items and not (self.delete_empty_store and self.candidate_stores)

    def _repr_markdown_(self) -> str:
        if self.empty:
            text = f"**Nothing to delete**: gateway `{self.gateway_id}` and the runbook's secrets are gone."
        else:
            rows: list[tuple[str, str, str, str | None]] = [(i.kind, i.name, i.id, i.note or None)
                                                            for i in self.items]
            rows += [("store (if empty afterwards)", s.name, s.id, None)
                     for s in self.candidate_stores if self.delete_empty_store]
            text = f"**Rollback plan** for gateway `{self.gateway_id}`\n\n" + markdown_table(
                ["delete", "name", "id", "note"], rows)
        if self.kept:
            text += "\n\nKept (not chosen): " + "; ".join(self.kept)
        return text


def plan_rollback(
    session: Session,
    *,
    delete_provider_configs: bool = True,
    delete_secrets: bool = True,
    delete_empty_store: bool = True,
) -> RollbackPlan:
    """What to delete for this gateway, from what exists now (so a second rollback plans nothing)."""
    found = _find(session)
    gateway_id = session.settings.gateway_id
    items: list[RollbackItem] = []
    kept: list[str] = []
    # First: the job would otherwise keep trying to deliver a deleted gateway's logs (and hold one of four).
    items.extend(RollbackItem("logpush_job", str(j.id), j.name or "", note=f"Logpush to {j.place}")
                 for j in found.logpush_jobs)
    if found.configs:
        if delete_provider_configs:
            items.extend(RollbackItem("provider_config", c.id, f"{c.provider_slug} ({c.alias})") for c in found.configs)
        else:
            kept.append(f"{len(found.configs)} provider config(s) (they go with the gateway)")
    if found.gateway is not None:
        items.append(RollbackItem("gateway", found.gateway.id, found.gateway.id,
                                  note="its endpoint stops serving; the logs API stops answering"))
    if found.secrets:
        if delete_secrets:
            items.extend(RollbackItem("secret", s.id, s.name, s.store_id) for s in found.secrets)
        else:
            kept.append(f"{len(found.secrets)} secret(s): " + ", ".join(s.name for s in found.secrets))
    ours = {s.store_id for s in found.secrets}
    if found.gateway is not None and found.gateway.store_id:
        ours.add(found.gateway.store_id)
    candidates = [s for s in found.stores if s.id in ours]
    if candidates and not delete_empty_store:
        kept.append("store(s) " + ", ".join(s.name for s in candidates))
    plan = RollbackPlan(gateway_id, items, candidates, delete_empty_store, kept)
    detail = ("nothing to delete" if plan.empty else
              f"{len(items)} item(s): " + ", ".join(f"{i.kind} {i.name}" for i in items))
    plan.checks.append(Check(None, "rollback planned", "pass", detail))
    return plan


# --- confirmation -------------------------------------------------------------------------------------------


@dataclass
class Confirmation:
    """Whether the destructive steps may run: ``confirm_delete`` equal to the gateway id, or the widget.

    With the widget, the state is live: the header, the button and the outputs of the cells below follow
    the click (``result`` / ``verification`` are what the widget did; ``followers`` redraw those cells)."""

    gateway_id: str
    confirmed: bool
    source: str
    widget: Any = None
    on_confirm: Callable[[], Any] | None = field(default=None, repr=False)
    header: Any = field(default=None, repr=False)
    result: RollbackResult | None = field(default=None, repr=False)
    verification: RollbackVerification | None = field(default=None, repr=False)
    followers: list[Callable[[], None]] = field(default_factory=list, repr=False)

    @property
    def pending(self) -> bool:
        """A widget waits for the operator's click: the cells below wait too (they are not a dry run)."""
        return self.widget is not None and not self.confirmed

    def _repr_markdown_(self) -> str:
        if self.confirmed and self.result is not None:
            # What the widget records lands in its own output, which a saved notebook does not keep as cell
            # outputs: running the cells below again records the same result as the notebook's evidence.
            return (f"**Confirmed** by {self.source}: deleted {len(self.result.deleted)} item(s); the result and "
                    "its verification are below. Run the cells below again (Run > Run Selected Cell and All "
                    "Below from *Roll back*) to record them as evidence; nothing is deleted twice.")
        if self.confirmed:
            return f"**Confirmed** by {self.source}: the next cells delete what the plan lists."
        if self.widget is not None:
            return (f"**Not confirmed yet.** Type `{self.gateway_id}` in the box and press *Delete* to roll back; "
                    "the rollback and its verification then run here and the cells below show them.")
        return (f"**Dry run**: `confirm_delete` is not `{self.gateway_id}`, so nothing is deleted. Set "
                f"`confirm_delete = \"{self.gateway_id}\"` to roll back.")

    def _ipython_display_(self) -> None:
        from IPython.display import Markdown, display

        if self.header is not None:
            display(self.header)  # type: ignore[no-untyped-call]
        else:
            display(Markdown(self._repr_markdown_()))  # type: ignore[no-untyped-call]
        if self.widget is not None:
            display(self.widget)  # type: ignore[no-untyped-call]

    def redraw(self) -> None:
        """The header and the cells below, after the widget changed the state."""
        if self.header is not None:
            self.header.value = _markdown_html(self._repr_markdown_())
        for follow in self.followers:
            follow()


def _markdown_html(text: str) -> str:
    """A header's Markdown as the HTML an ``ipywidgets.HTML`` shows (bold and code only: all it uses)."""
    import html

    escaped = html.escape(text, quote=False)
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", escaped)
    escaped = re.sub(r"\*(.+?)\*", r"<i>\1</i>", escaped)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", escaped)


def _live(confirmation: Confirmation, draw: Callable[[], Any]) -> None:
    """Show ``draw()`` in a widget area that is drawn again when the confirm widget acts.

    An ipywidgets ``Output`` is updated across cells by the widget protocol (a display id update is not
    routed to another cell's output by every front end)."""
    import ipywidgets as widgets
    from IPython.display import display

    area = widgets.Output()

    def follow() -> None:
        area.clear_output()
        with area:
            display(draw())  # type: ignore[no-untyped-call]

    confirmation.followers.append(follow)
    follow()
    display(area)  # type: ignore[no-untyped-call]


def confirm(session: Session, plan: RollbackPlan, confirm_delete: str = "") -> Confirmation:
    """Confirmed when ``confirm_delete`` is the gateway id. In JupyterLab without it, a confirm widget: its
    *Delete* button runs the rollback and its verification (in the widget's output) once the typed text is
    the gateway id; then the header says so, the button stays disabled and the cells below show the result.
    Under papermill there is no one to click: the parameter decides."""
    gateway_id = plan.gateway_id
    if confirm_delete.strip() == gateway_id:
        return Confirmation(gateway_id, True, "the confirm_delete parameter")
    if plan.empty or not session.interactive:
        return Confirmation(gateway_id, False, "no confirmation")
    import ipywidgets as widgets

    confirmation = Confirmation(gateway_id, False, "no confirmation")
    text = widgets.Text(placeholder=gateway_id, description="Gateway id:")
    button = widgets.Button(description="Delete", button_style="danger", icon="trash")
    output = widgets.Output()

    def clicked(_: Any) -> None:
        with output:
            if confirmation.confirmed:
                return
            if text.value.strip() != gateway_id:
                print(f"Type {gateway_id} exactly to confirm; nothing was deleted.")
                return
            button.disabled = text.disabled = True
            from IPython.display import display

            from aigw import evidence

            confirmation.confirmed, confirmation.source = True, "the confirm widget"
            try:
                result = apply_rollback(session, plan, confirmation)
            except Exception:
                # Every delete is idempotent: pressing Delete again finishes what this one started.
                confirmation.confirmed, confirmation.source = False, "no confirmation"
                button.disabled = text.disabled = False
                raise
            confirmation.result = result
            display(result)  # type: ignore[no-untyped-call]
            evidence.record_all(result, raise_on_fail=False)
            verified = verify_rollback(session, plan, result)
            confirmation.verification = verified
            display(verified)  # type: ignore[no-untyped-call]
            evidence.record_all(verified, raise_on_fail=False)
            button.description, button.icon = "Deleted", "check"
            confirmation.redraw()

    button.on_click(clicked)
    confirmation.widget = widgets.VBox([widgets.HBox([text, button]), output])
    confirmation.header = widgets.HTML(_markdown_html(confirmation._repr_markdown_()))
    return confirmation


# --- apply and verify -----------------------------------------------------------------------------------------


@dataclass
class RollbackResult:
    """What was deleted (or, in a dry run, would have been)."""

    gateway_id: str
    dry_run: bool
    deleted: list[RollbackItem]
    would_delete: list[RollbackItem]
    kept_stores: list[str]
    nothing_to_delete: bool
    checks: list[Check] = field(default_factory=list)
    #: The confirm widget still waits for its click: this cell shows what the widget does, when it does.
    confirmation: Confirmation | None = field(default=None, repr=False)

    def _repr_markdown_(self) -> str:
        if self.nothing_to_delete:
            text = f"**Nothing to delete**: gateway `{self.gateway_id}` is already rolled back."
        elif self.confirmation is not None:
            text = (f"**Waiting for the Delete button above**: nothing deleted yet. Pressed, it deletes "
                    f"{len(self.would_delete)} item(s):\n\n") + markdown_table(
                ["kind", "name", "id"], [(i.kind, i.name, i.id) for i in self.would_delete])
        elif self.dry_run:
            text = "**Dry run**: nothing was deleted. It would delete:\n\n" + markdown_table(
                ["kind", "name", "id"], [(i.kind, i.name, i.id) for i in self.would_delete])
        else:
            text = "**Rolled back**: deleted\n\n" + markdown_table(
                ["kind", "name", "id"], [(i.kind, i.name, i.id) for i in self.deleted])
        if self.kept_stores:
            text += "\n\n" + "; ".join(self.kept_stores)
        return text + "\n\n" + checks_table(self.checks)

    def _ipython_display_(self) -> None:
        from IPython.display import Markdown, display

        waiting = self.confirmation
        if waiting is None:
            display(Markdown(self._repr_markdown_()))  # type: ignore[no-untyped-call]
            return
        # The widget's own result once it acted, else this waiting one.
        _live(waiting, lambda: Markdown((waiting.result or self)._repr_markdown_()))  # type: ignore[no-untyped-call]


def apply_rollback(session: Session, plan: RollbackPlan, confirmation: Confirmation) -> RollbackResult:
    """Delete what the plan lists when confirmed (else list it: a dry run). Every delete is idempotent."""
    client = session.client
    gateway_id = plan.gateway_id
    stores = [RollbackItem("store", s.id, s.name) for s in plan.candidate_stores] if plan.delete_empty_store else []
    if plan.empty:
        result = RollbackResult(gateway_id, not confirmation.confirmed, [], [], [], True)
        result.checks.append(Check(None, "rollback", "pass", "nothing to delete"))
        return result
    if confirmation.result is not None:
        return confirmation.result  # the confirm widget rolled back already
    would_delete = [*plan.items, *stores]
    if confirmation.pending:
        result = RollbackResult(gateway_id, True, [], would_delete, [], False, confirmation=confirmation)
        result.checks.append(Check(None, "rollback", "skip",
                                   f"waiting for the Delete button: {len(would_delete)} item(s) would be "
                                   "deleted, none was yet"))
        return result
    if not confirmation.confirmed:
        result = RollbackResult(gateway_id, True, [], would_delete, [], False)
        result.checks.append(Check(None, "rollback", "skip",
                                   f"dry run: confirm_delete is not {gateway_id}; "
                                   f"{len(would_delete)} item(s) would be deleted, none was"))
        return result
    deleted: list[RollbackItem] = []
    for item in plan.items:
        if item.kind == "logpush_job":
            LogpushApi(client).delete_job(int(item.id))
        elif item.kind == "provider_config":
            client.delete_provider_config(gateway_id, item.id)
        elif item.kind == "gateway":
            client.delete_gateway(gateway_id)
        elif item.kind == "secret" and item.store_id is not None:
            client.delete_secret(item.store_id, item.id)
        deleted.append(item)
    kept_stores: list[str] = []
    for store in stores:
        try:
            remaining = client.list_secrets(store.id)
        except NotFoundError:
            continue
        if remaining:
            kept_stores.append(f"store {store.name} kept: it holds {len(remaining)} other secret(s)")
            continue
        client.delete_store(store.id)
        deleted.append(store)
    result = RollbackResult(gateway_id, False, deleted, [], kept_stores, False)
    result.checks.append(Check(None, "rollback", "pass",
                               f"deleted {len(deleted)} item(s): " + ", ".join(f"{i.kind} {i.name}" for i in deleted)))
    return result


@dataclass
class RollbackVerification:
    gateway_id: str
    probe: ProbeResult | None
    checks: list[Check] = field(default_factory=list)
    confirmation: Confirmation | None = field(default=None, repr=False)

    def _repr_markdown_(self) -> str:
        return f"**Verification** of the rollback of `{self.gateway_id}`\n\n" + checks_table(self.checks)

    def _ipython_display_(self) -> None:
        from IPython.display import Markdown, display

        waiting = self.confirmation
        if waiting is None:
            display(Markdown(self._repr_markdown_()))  # type: ignore[no-untyped-call]
            return
        _live(waiting, lambda: Markdown((waiting.verification or self)._repr_markdown_()))  # type: ignore[no-untyped-call]


def _endpoint_probe(session: Session) -> ProbeResult:
    provider = "openai"
    return session.prober.probe_provider(provider, DEFAULT_MODELS[provider], "ping", max_tokens=1)


def verify_rollback(
    session: Session, plan: RollbackPlan, result: RollbackResult, *, wait_s: float = 30.0
) -> RollbackVerification:
    """After a rollback: the gateway API answers not found, and the gateway endpoint no longer serves
    requests (the gateway refuses them itself; nothing reaches a provider). A dry run verifies nothing."""
    waiting = result.confirmation
    if waiting is not None and waiting.verification is not None:
        return waiting.verification  # the confirm widget verified its rollback already
    verification = RollbackVerification(plan.gateway_id, None)
    if waiting is not None:
        verification.confirmation = waiting
        verification.checks.append(Check(None, "gateway gone after rollback", "skip",
                                         "waiting for the Delete button above: nothing deleted yet"))
        return verification
    if result.dry_run and not result.nothing_to_delete:
        verification.checks.append(Check(None, "gateway gone after rollback", "skip", "dry run: nothing deleted"))
        return verification
    client = session.client
    try:
        client.get_gateway(plan.gateway_id)
        verification.checks.append(Check(None, "gateway API answers not found", "fail",
                                         f"GET gateway {plan.gateway_id} still answers 200"))
    except NotFoundError as exc:
        codes = ", ".join(str(c) for c in exc.codes) or "none"
        verification.checks.append(Check(None, "gateway API answers not found", "pass",
                                         f"GET gateway {plan.gateway_id}: {exc.status} (code {codes})"))
    except CloudflareError as exc:
        verification.checks.append(Check(None, "gateway API answers not found", "fail", str(exc)))
    # ASSUMPTION: Cloudflare's data plane may take a few seconds to forget a deleted gateway; the probe is
    # repeated for up to wait_s while the gateway still forwards requests.
    deadline = time.monotonic() + max(wait_s, 0.0)
    while True:
        probe = _endpoint_probe(session)
        if probe.outcome == "gateway_error" or time.monotonic() >= deadline:
            break
        time.sleep(5.0)
    verification.probe = probe
    stopped = probe.outcome == "gateway_error" and not probe.ok
    detail = (f"{probe.status} code {probe.gateway_error_code}: {probe.excerpt}" if probe.outcome == "gateway_error"
              else f"{probe.status} {probe.outcome}: the request still reached a provider")
    verification.checks.append(Check(None, "gateway endpoint no longer serves requests",
                                     "pass" if stopped else "fail", detail))
    return verification
