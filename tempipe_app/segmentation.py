"""Widgets of the Segmentation page, built from :class:`tempipe.segment.SegmentParams`.

The dataclass is the one source of defaults, help texts, choices and bounds; this module
only adds the slider ranges of unbounded fields and how the fields are grouped.
"""

from __future__ import annotations

from dataclasses import fields

import streamlit as st

from tempipe.errors import ParameterError
from tempipe.segment import SegmentParams

#: Widget groups (fields not listed go to "Other").
GROUPS = {
    "Particles and threshold": ("polarity", "particle_radius_px", "threshold_method",
                                "threshold_offset", "min_size", "min_contrast"),
    "Touching particles": ("split", "split_h", "valley_depth", "erode_depth", "fill_holes"),
    "Contrast and noise": ("normalize_percentiles", "background_correction",
                           "background_scale", "clahe", "clahe_clip_limit", "denoise",
                           "denoise_sigma"),
    "Clean-up": ("outlier_filter", "outlier_area_factor", "outlier_max_solidity",
                 "clear_border"),
}
#: Slider ranges for fields the dataclass bounds on one side only: (low, high, step).
UNBOUNDED_RANGES = {"background_scale": (1.0, 20.0, 0.5), "min_contrast": (0.0, 20.0, 0.5),
                    "outlier_area_factor": (1.0, 10.0, 0.5)}
_FIELDS = {f.name: f for f in fields(SegmentParams)}


def widget_key(dataset_uid: int, name: str) -> str:
    return f"seg_{dataset_uid}_{name}"


def _auto_key(dataset_uid: int) -> str:
    return widget_key(dataset_uid, "particle_radius_auto")


def load_into_widgets(dataset_uid: int, params: SegmentParams, *, force: bool = False) -> None:
    """Put ``params`` into the widgets' session state (only missing keys unless ``force``)."""
    for name in _FIELDS:
        key = widget_key(dataset_uid, name)
        if force or key not in st.session_state:
            value = getattr(params, name)
            if name == "particle_radius_px":
                st.session_state[_auto_key(dataset_uid)] = value is None
                value = 15.0 if value is None else float(value)
            elif name == "normalize_percentiles":
                value = tuple(float(v) for v in value)
            st.session_state[key] = value


def _widget(dataset_uid: int, name: str) -> None:
    f, key = _FIELDS[name], widget_key(dataset_uid, name)
    meta, label = f.metadata, name.replace("_", " ")
    helptext = meta.get("help")
    if "choices" in meta:
        st.selectbox(label, list(meta["choices"]), key=key, help=helptext)
    elif f.type == "bool":
        st.checkbox(label, key=key, help=helptext)
    elif name == "particle_radius_px":
        auto = st.checkbox("estimate particle radius", key=_auto_key(dataset_uid),
                           help=helptext)
        st.number_input("particle radius (px)", min_value=0.5, max_value=1000.0, step=1.0,
                        key=key, disabled=auto, help=helptext)
    elif name == "normalize_percentiles":
        st.slider("normalise percentiles", 0.0, 100.0, step=0.1, key=key, help=helptext)
    else:
        low, high, step = UNBOUNDED_RANGES.get(name, (meta.get("low", 0.0),
                                                      meta.get("high", 1.0), 0.01))
        if name == "clahe_clip_limit":
            low, step = 0.001, 0.001
        st.slider(label, float(low), float(high), step=float(step), key=key, help=helptext)


def parameter_widgets(dataset_uid: int) -> None:
    """Every SegmentParams knob, grouped in expanders (values in session state)."""
    listed = {n for names in GROUPS.values() for n in names}
    groups = dict(GROUPS)
    other = tuple(n for n in _FIELDS if n not in listed)
    if other:
        groups["Other"] = other
    for i, (title, names) in enumerate(groups.items()):
        with st.expander(title, expanded=i < 2):
            for name in names:
                if name in _FIELDS:
                    _widget(dataset_uid, name)


def params_from_widgets(dataset_uid: int) -> SegmentParams:
    """The SegmentParams the widgets describe (raises ParameterError when invalid)."""
    values = {}
    for name in _FIELDS:
        value = st.session_state.get(widget_key(dataset_uid, name), _FIELDS[name].default)
        if name == "particle_radius_px" and st.session_state.get(_auto_key(dataset_uid), True):
            value = None
        elif name == "normalize_percentiles":
            value = tuple(float(v) for v in value)
        values[name] = value
    try:
        return SegmentParams(**values)
    except TypeError as exc:
        raise ParameterError(f"segmentation parameters not understood: {exc}") from exc


def changed_fields(params: SegmentParams, reference: SegmentParams) -> list[str]:
    """Names of the fields where ``params`` differs from ``reference``."""
    return [n for n in _FIELDS if getattr(params, n) != getattr(reference, n)]
