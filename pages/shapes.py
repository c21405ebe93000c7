"""Page 3 - Shape inference: the CNN's (p, d, L ratio) for every particle, checked."""

import streamlit as st

from tempipe_app import analysis, common, shapes


@st.cache_data(max_entries=16, show_spinner=False)
def montage(key: str, order: str, n: int, columns: int, _ds, _table):
    rows = shapes.montage_sample(_table, order, n)
    crops, masks = shapes.crops_and_masks(_ds.results, rows, 48)
    return shapes.montage_figure(crops, masks, rows, columns)


def require_segmentation(ds) -> bool:
    if ds.segmented:
        return True
    st.info(f"**{ds.name}** is not segmented with its current parameters yet.")
    if st.button(f"Segment all {len(ds.images)} image(s) now", key="shape_segment"):
        bar = common.ProgressBar("Segmenting")
        analysis.run_segmentation(ds, bar)
        bar.done()
        st.rerun()
    return False


def run_panel(ds) -> None:
    n = sum(len(r.particles) for r in ds.results.values())
    label = "Run the shape CNN again" if ds.shaped else f"Run the shape CNN on all {n} particles"
    if st.button(label, type="secondary" if ds.shaped else "primary", key="run_cnn"):
        bar = common.ProgressBar("Shape inference")
        analysis.run_shape_inference(ds, bar)
        bar.done()
    if ds.shape_error:
        st.error(f"The shape CNN cannot run: {ds.shape_error}")


def filter_panel(ds) -> None:
    f = ds.shape_filter
    st.subheader("Uncertain particles")
    c = st.columns(4)
    f.max_p_rel_sd = c[0].slider("max relative spread of p (σp / p)", 0.05, 2.0,
                                 f.max_p_rel_sd, 0.05, key=f"flt_p_{ds.uid}")
    f.max_d_sd = c[1].slider("max spread of d (σd)", 0.05, 2.0, f.max_d_sd, 0.05,
                             key=f"flt_d_{ds.uid}")
    f.min_jaccard = c[2].slider("min re-simulation Jaccard", 0.0, 1.0, f.min_jaccard, 0.05,
                                key=f"flt_j_{ds.uid}")
    f.exclude = c[3].toggle("Leave them out of clusters, compare and report", f.exclude,
                            key=f"flt_x_{ds.uid}")


def model_panel() -> None:
    weights, card_path = analysis.model_paths()
    with st.expander("Model card and diagnostics", expanded=False):
        card = shapes.read_card(card_path)
        if card is None:
            st.warning(f"No model card at {card_path}.")
            return
        st.dataframe(shapes.card_summary(card), hide_index=True, width="stretch")
        figures = shapes.diagnostics(weights)
        if not figures:
            st.caption("No diagnostics figures were saved next to the weights.")
        for tab, (title, fig) in zip(st.tabs(list(figures)) if figures else [],
                                     figures.items()):
            tab.plotly_chart(fig, key=f"diag_{title}")
        with st.expander("Full card (JSON)"):
            st.json(card, expanded=False)


with common.page_guard():
    st.title("Shape inference")
    ds = common.dataset_picker()
    if ds is None:
        st.stop()
    st.caption("A CNN trained only on simulated particles gives each particle the curvature "
               "p, the number of major axes d and the elongation L ratio of the paper's "
               "shape model (eq. 1); the re-simulated shape is compared with the particle "
               "(Jaccard index).")
    if require_segmentation(ds):
        run_panel(ds)
        if ds.shaped:
            filter_panel(ds)
            table = analysis.particle_table(ds, confident_only=False)
            n_unc = int(table["uncertain"].sum())
            st.write(f"{len(table)} particles, **{n_unc} uncertain** "
                     f"({n_unc / max(len(table), 1):.0%}), shown grey below.")
            st.plotly_chart(shapes.parameter_histograms(table), key="shape_hist")
            st.subheader("Particles with their re-simulated shape")
            c = st.columns(3)
            order = c[0].selectbox("Show", ["random", "worst fit first", "best fit first"],
                                   key="montage_order")
            n = c[1].slider("Particles", 8, 64, 32, 8, key="montage_n")
            which = c[2].selectbox("Among", ["all", "uncertain only", "confident only"],
                                   key="montage_which")
            if which != "all":
                table = table[table["uncertain"] == (which == "uncertain only")]
            if len(table):
                key = f"{ds.analysis_key}|{ds.shape_key}|{which}|{ds.shape_filter}"
                st.plotly_chart(montage(key, order, n, 8, ds, table), key="shape_montage")
            else:
                st.write("No particle in this selection.")
    model_panel()
