"""What every page shares: errors in words, the dataset picker, progress bars, settings."""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager

import streamlit as st

from tempipe.errors import TempipeError
from tempipe_app import state

LOG = logging.getLogger("tempipe_app")
#: Environment variable / query parameter: images per demo batch (tests use 1).
DEMO_IMAGES_ENV = "TEMPIPE_DEMO_IMAGES"
DEMO_IMAGES_QUERY = "demo_images"
DEFAULT_DEMO_IMAGES = 3
MAX_DEMO_IMAGES = 12
#: Environment variable / query parameter: load the demo on a session's first visit.
AUTOLOAD_ENV = "TEMPIPE_AUTOLOAD_DEMO"
AUTOLOAD_QUERY = "demo"


def explain(exc: BaseException) -> str:
    """A user-facing sentence for an exception (never a traceback)."""
    if isinstance(exc, TempipeError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return ("The computer ran out of memory on this step; try fewer or smaller images, "
                "or close other sessions.")
    return (f"Unexpected problem ({type(exc).__name__}: {exc}). The other results are kept; "
            "if it happens again, please report it with the input that caused it.")


@contextmanager
def page_guard():
    """Run a page body; any error is shown in words and logged, never as a traceback.

    Streamlit's own control flow (``st.stop``, ``st.rerun``, ``st.switch_page``) derives
    from ``BaseException`` and passes through untouched.
    """
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - the UI's last line of defence
        if not isinstance(exc, TempipeError):
            LOG.exception("page error")
        st.error(explain(exc))


def demo_images() -> int:
    """Images per demo batch: query parameter, else environment variable, else 3."""
    raw = st.query_params.get(DEMO_IMAGES_QUERY) or os.environ.get(DEMO_IMAGES_ENV)
    try:
        n = int(raw) if raw else DEFAULT_DEMO_IMAGES
    except ValueError:
        n = DEFAULT_DEMO_IMAGES
    return min(max(n, 1), MAX_DEMO_IMAGES)


def autoload_demo() -> bool:
    """True once per session when ``?demo=1`` or ``TEMPIPE_AUTOLOAD_DEMO=1`` asks for the demo."""
    wanted = (st.query_params.get(AUTOLOAD_QUERY) or os.environ.get(AUTOLOAD_ENV, "")).lower()
    if wanted not in ("1", "true", "yes") or st.session_state.get("demo_autoloaded"):
        return False
    st.session_state["demo_autoloaded"] = True
    return not state.store()


def dataset_picker(label: str = "Dataset", key: str = "dataset_picker") -> state.Dataset | None:
    """Select the active dataset (shared by all pages); None and a hint when there is none."""
    datasets = state.store()
    if not datasets:
        st.info("No dataset yet. Open **Datasets** to load the demo batches (one click) or "
                "upload micrographs.")
        st.page_link("pages/datasets.py", label="Go to Datasets", icon=":material/folder_open:")
        return None
    names = list(datasets)
    current = state.active()
    index = names.index(current.name) if current is not None else 0
    choice = st.selectbox(label, names, index=index, key=f"{key}_{len(names)}_{index}")
    if choice != current.name:
        state.set_active(choice)
    return datasets[choice]


class ProgressBar:
    """Adapter from the core's ``progress(done, total, name)`` callback to ``st.progress``."""

    def __init__(self, text: str):
        self.text = text
        self.bar = st.progress(0.0, text=text)

    def __call__(self, done: int, total: int, name: str = "") -> None:
        fraction = done / total if total else 1.0
        self.bar.progress(min(max(fraction, 0.0), 1.0),
                          text=f"{self.text}: {done}/{total} {name}".rstrip())

    def done(self) -> None:
        self.bar.empty()


def format_nm(value) -> str:
    """``"0.45 nm/px"`` or ``"none"``."""
    return "none" if value is None else f"{float(value):.4g} nm/px"


def left_out_note(left_out: dict) -> str:
    """Caption for groups the classifier could not learn (``ClassifierResult.left_out``)."""
    from tempipe.classifier import MIN_GROUP  # not at page start: optuna is slow to import

    groups = ", ".join(f"{g} ({n} particle{'s' if n != 1 else ''})"
                       for g, n in sorted(left_out.items()))
    return (f"Group{'s' if len(left_out) > 1 else ''} {groups}: too few particles to learn "
            f"(fewer than {MIN_GROUP}), left out of the classifier; it never predicts "
            f"{'them' if len(left_out) > 1 else 'it'}.")
