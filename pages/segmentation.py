"""Page 2 - Segmentation: tune SegmentParams on one image, then apply to the batch."""

import streamlit as st

from tempipe.errors import ParameterError
from tempipe.segment import SegmentParams
from tempipe_app import analysis, common, overlay
from tempipe_app import segmentation as helpers


def reset(uid: int, params: SegmentParams) -> None:
    helpers.load_into_widgets(uid, params, force=True)


def preview_panel(ds, draft: SegmentParams) -> None:
    names = [e.name for e in ds.images]
    name = st.selectbox("Image", names, key=f"seg_image_{ds.uid}")
    entry = ds.entry(name)
    image = entry.micrograph.image
    factor = overlay.display_factor(image.shape)
    opts = st.columns(2)
    boxes = opts[0].checkbox("Bounding boxes", value=True, key="seg_boxes")
    full = False
    if factor > 1:
        full = opts[1].checkbox("Full-resolution preview (slower)", value=False,
                                key="seg_full_res")
    try:
        bar = analysis.scale_bar(entry.sha256, image)
        pv = overlay.preview(entry.sha256, image, draft, bar, full_resolution=full,
                             boxes=boxes)
    except Exception as exc:  # noqa: BLE001 - the batch panel below stays usable
        st.error(f"{name}: {common.explain(exc)}")
        return
    st.plotly_chart(pv.figure, key="seg_overlay", config={"displaylogo": False})
    where = "" if factor == 1 or full else (
        f" Preview segmented at 1/{factor} resolution for speed; the batch runs at full "
        "resolution.")
    st.caption(f"{name} ({image.shape[0]} × {image.shape[1]} px): **{pv.n_segmented} particles "
               f"segmented**, {pv.n_excluded} excluded (grey: cut by the border or at the "
               f"scale bar, outlined in yellow). Updated in {pv.seconds:.2f} s.{where}")


def batch_panel(ds, draft: SegmentParams) -> None:
    st.subheader("Apply to the batch")
    changed = helpers.changed_fields(draft, ds.params)
    if changed:
        st.info("Not yet applied to the batch: " + ", ".join(changed) + ".")
    if st.button(f"Apply to all {len(ds.images)} image(s)", type="primary",
                 key="apply_batch"):
        ds.params = draft
        bar = common.ProgressBar("Segmenting")
        analysis.run_segmentation(ds, bar)
        bar.done()
    if ds.segmented:
        table = analysis.images_table(ds)
        n = int(table["particles"].fillna(0).sum())
        st.success(f"{n} particles kept in {len(ds.results)} image(s)"
                   + (f"; {len(ds.failures)} image(s) failed (reasons below)."
                      if ds.failures else "."))
        st.dataframe(table, hide_index=True, width="stretch")
    elif ds.analysis_key is not None:
        st.warning("The batch was analysed with other parameters; apply again to update it.")


with common.page_guard():
    st.title("Segmentation")
    ds = common.dataset_picker()
    if ds is None:
        st.stop()
    helpers.load_into_widgets(ds.uid, ds.params)
    left, right = st.columns([1, 2.3])
    with left:
        st.caption("Every knob of the segmentation; hover the ? icons for what each does.")
        b1, b2 = st.columns(2)
        b1.button("Defaults", key="seg_defaults", on_click=reset,
                  args=(ds.uid, SegmentParams()))
        b2.button("Applied values", key="seg_applied", on_click=reset,
                  args=(ds.uid, ds.params))
        helpers.parameter_widgets(ds.uid)
    try:
        draft = helpers.params_from_widgets(ds.uid)
    except ParameterError as exc:
        right.error(str(exc))
        st.stop()
    with right:
        preview_panel(ds, draft)
    batch_panel(ds, draft)
