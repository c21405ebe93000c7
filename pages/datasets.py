"""Page 1 - Datasets: the demo batches, uploads with their scale, the session's datasets."""

import pandas as pd
import streamlit as st

from tempipe.errors import ParameterError
from tempipe_app import analysis, common, state
from tempipe_app import datasets as helpers

UPLOAD_ROUND = "upload_round"


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


def stored_section() -> None:
    st.subheader("Datasets in this session")
    st.caption("Datasets last for this browser session only (kept in memory for this tab; "
               "another tab or browser starts empty). Download a report to keep results.")
    if not state.store():
        st.write("None yet.")
        return
    st.dataframe(helpers.datasets_table(), hide_index=True, width="stretch")
    for ds in list(state.store().values()):
        cols = st.columns([3, 1, 3, 1], vertical_alignment="center")
        active = " (open)" if state.active() is ds else ""
        cols[0].markdown(f"**{ds.name}**{active} · {len(ds.images)} image(s) · {ds.source}")
        if cols[1].button("Open", key=f"open_{ds.uid}"):
            state.set_active(ds.name)
            st.switch_page("pages/segmentation.py")
        new = cols[2].text_input("Rename", value=ds.name, key=f"rename_{ds.uid}",
                                 label_visibility="collapsed",
                                 help="Type a new name and press Enter to rename.")
        if new != ds.name:
            try:
                state.rename(ds.name, new)
                st.rerun()
            except ParameterError as exc:
                cols[2].error(str(exc))
        if cols[3].button("Delete", key=f"delete_{ds.uid}"):
            state.delete(ds.name)
            st.rerun()
    failed = [dict(dataset=d.name, **p) for d in state.store().values() for p in d.unreadable]
    if failed:
        with st.expander(f"{len(failed)} uploaded file(s) could not be read"):
            st.dataframe(pd.DataFrame(failed), hide_index=True, width="stretch")


with common.page_guard():
    st.title("Datasets")
    if message := st.session_state.pop("created_message", None):
        st.success(message)
    demo_section()
    st.divider()
    upload_section()
    st.divider()
    stored_section()
