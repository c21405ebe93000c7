"""Page 1 - Datasets: the demo batches, uploads with their scale, the session's datasets."""

import pandas as pd
import streamlit as st

from tempipe.errors import ParameterError, TempipeError
from tempipe_app import analysis, common, state, stored
from tempipe_app import datasets as helpers

UPLOAD_ROUND = "upload_round"
CONFIRM = "confirm_delete_saved"


def demo_section() -> None:
    st.subheader("Demo batches")
    n = common.demo_images()
    loaded = [n for n in helpers.DEMO_TITLES.values() if n in state.store()]
    st.write(f"Two simulated CsPbBr₃ syntheses like the paper's case study, {n} calibrated "
             "1024 × 1024 micrograph(s) of ~300 particles each: **hot-injection** (uniform "
             "cuboids, platelets) and **LARP** (six polydisperse groups). One click "
             "simulates, segments and runs the shape CNN on both.")
    label = "Load the demo batches again" if loaded else "Load the demo batches"
    if st.button(label, type="primary", key="load_demo") or common.autoload_demo():
        made = helpers.load_demo(n)
        msgs = [f"**{d.name}**: {len(d.images)} image(s), "
                f"{len(analysis.particle_table(d))} particles" for d in made]
        st.success("Loaded " + "; ".join(msgs) + ". Open **Segmentation** or **Clusters**.")
        if made[0].shape_error:
            st.warning(f"Shape CNN not run: {made[0].shape_error}")


def scale_inputs(entries, choice: str, bars: dict) -> tuple[float | None, dict]:
    """Widgets for the chosen scale; returns (typed nm/px, bar value by image name)."""
    typed, values = None, {}
    if choice == "typed":
        typed = st.number_input("Pixel size (nm per pixel)", min_value=0.0001, value=None,
                                format="%.4f", key="typed_nm",
                                placeholder="e.g. 0.45")
        return typed, values
    needing = [e for e in entries
               if choice == "scale-bar" or e.micrograph.pixel_size_nm is None]
    if choice == "file" and needing:
        st.info(f"{len(needing)} image(s) have no calibration in the file: their scale "
                "comes from the scale bar below.")
    for entry in needing:
        bar = bars.get(entry.name)
        if bar is None:
            st.warning(f"{entry.name}: no scale bar found, so its sizes stay in pixels "
                       "(nm columns empty). Choose a typed pixel size to fix this.")
            continue
        left, right = st.columns([3, 1])
        with left:
            st.plotly_chart(helpers.scale_bar_figure(entry.micrograph.image, bar),
                            key=f"barfig_{entry.sha256}", config={"displayModeBar": False})
        with right:
            read = (f"label read as **{bar.text}** ({bar.value_nm:g} nm)" if bar.value_nm
                    else "label **not read**: type the bar's length")
            st.caption(f"{entry.name}: bar {bar.length_px:.0f} px long (outlined), {read}.")
            values[entry.name] = st.number_input(
                "Scale bar length (nm)", min_value=0.001, value=bar.value_nm,
                key=f"bar_nm_{entry.sha256}", placeholder="e.g. 100")
    return typed, values


def upload_section() -> None:
    st.subheader("Upload a batch")
    round_ = st.session_state.setdefault(UPLOAD_ROUND, 0)
    files = st.file_uploader("Micrographs (PNG, JPEG, TIFF, DM3/DM4, other EM formats) or "
                             "a ZIP of them", type=helpers.UPLOAD_TYPES,
                             accept_multiple_files=True, key=f"upload_{round_}")
    if not files:
        return
    pairs, problems = helpers.expand_uploads(files)
    entries, unreadable = helpers.decode(pairs)
    problems += unreadable
    helpers.check_zip_error(problems)
    if not entries:
        st.error("None of the uploaded files could be read; see the reasons above.")
        return
    bars = helpers.scale_bars(entries)
    st.dataframe(helpers.files_table(entries, bars), hide_index=True, width="stretch")
    default = files[0].name.rsplit(".", 1)[0] if len(files) == 1 else "my batch"
    name = st.text_input("Dataset name", value=default, key=f"name_{round_}")
    choice = st.radio("Scale", list(helpers.SCALE_CHOICES),
                      format_func=helpers.SCALE_CHOICES.get, key=f"scale_{round_}")
    typed, values = scale_inputs(entries, choice, bars)
    if st.button("Create dataset", type="primary", key="create_dataset"):
        if choice == "typed" and not typed:
            st.error("Type the pixel size in nm per pixel, or choose another scale source.")
            return
        helpers.apply_scale(entries, choice, typed, values, bars)
        ds = state.add(state.Dataset(name, entries, source="upload", unreadable=problems))
        st.session_state[UPLOAD_ROUND] = round_ + 1
        st.session_state["created_message"] = (
            f"Dataset **{ds.name}** created with {len(entries)} image(s). Tune the "
            "segmentation on the next page.")
        st.rerun()


def save(ds) -> None:
    try:
        with st.spinner(f"Saving {ds.name} into the store"):
            ref, written = stored.save(ds)
    except TempipeError as exc:
        st.error(str(exc))
        return
    st.session_state["created_message"] = (
        f"**{ds.name}** saved as **{ref.name} v{ref.version}** ({written} image(s) written"
        + (", the others were saved before" if written < len(ds.images) else "")
        + "). Reopen it from **Saved datasets** in any session.")
    st.rerun()


def stored_section() -> None:
    st.subheader("Datasets in this session")
    st.caption("Datasets in this list last as long as this browser tab. **Save** keeps one "
               "in the store on this computer, to reopen in any session.")
    if not state.store():
        st.write("None yet.")
        return
    st.dataframe(helpers.datasets_table(), hide_index=True, width="stretch")
    for ds in list(state.store().values()):
        cols = st.columns([3, 1, 1, 3, 1], vertical_alignment="center")
        active = " (open)" if state.active() is ds else ""
        saved = (f" · saved as {ds.saved_as}"
                 if ds.saved_as and ds.source != f"store: {ds.saved_as}" else "")
        cols[0].markdown(f"**{ds.name}**{active} · {len(ds.images)} image(s) · "
                         f"{ds.source}{saved}")
        if cols[1].button("Open", key=f"open_{ds.uid}"):
            state.set_active(ds.name)
            st.switch_page("pages/segmentation.py")
        if cols[2].button("Save", key=f"save_{ds.uid}", disabled=not ds.segmented,
                          help="Keep this dataset in the store on this computer." if
                          ds.segmented else "Apply the segmentation to the batch first."):
            save(ds)
        new = cols[3].text_input("Rename", value=ds.name, key=f"rename_{ds.uid}",
                                 label_visibility="collapsed",
                                 help="Type a new name and press Enter to rename.")
        if new != ds.name:
            try:
                state.rename(ds.name, new)
                st.rerun()
            except ParameterError as exc:
                cols[3].error(str(exc))
        if cols[4].button("Delete", key=f"delete_{ds.uid}"):
            state.delete(ds.name)
            st.rerun()
    failed = [dict(dataset=d.name, **p) for d in state.store().values() for p in d.unreadable]
    if failed:
        with st.expander(f"{len(failed)} uploaded file(s) could not be read"):
            st.dataframe(pd.DataFrame(failed), hide_index=True, width="stretch")


def saved_section() -> None:
    st.subheader("Saved datasets")
    table = stored.stored_table()
    st.caption(f"Kept in the store {stored.store().path} (set TEMPIPE_HOME to move it); "
               "`tempipe analyze` stores its batches here too.")
    if table.empty:
        st.write("No saved datasets yet.")
        return
    st.dataframe(table, hide_index=True, width="stretch")
    for row in table.itertuples():
        key = f"{row.name}|v{row.version}"
        cols = st.columns([4, 1, 1], vertical_alignment="center")
        cols[0].markdown(f"**{row.name}** v{row.version} · {row.images} image(s) · "
                         f"{row.particles} particles · {row.status}")
        if cols[1].button("Reopen", key=f"reopen_{key}"):
            try:
                ds = stored.reopen(row.name, row.version)
            except TempipeError as exc:
                cols[0].error(str(exc))
                continue
            st.session_state["created_message"] = (
                f"Reopened **{ds.name}**: {len(ds.images)} image(s), "
                f"{len(analysis.particle_table(ds))} particles, as stored.")
            st.rerun()
        if cols[2].button("Delete", key=f"delete_saved_{key}"):
            st.session_state[CONFIRM] = key
        if st.session_state.get(CONFIRM) == key:
            cols[0].warning(f"Delete **{row.name}** v{row.version} from the store for good?")
            if cols[1].button("Yes, delete", key=f"confirm_delete_saved_{key}", type="primary"):
                stored.delete(row.name, row.version)
                st.session_state.pop(CONFIRM, None)
                st.rerun()


with common.page_guard():
    st.title("Datasets")
    if message := st.session_state.pop("created_message", None):
        st.success(message)
    demo_section()
    st.divider()
    upload_section()
    st.divider()
    stored_section()
    st.divider()
    saved_section()
