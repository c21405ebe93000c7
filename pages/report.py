"""Page 6 - Report: a self-contained HTML report, the particle table, a ZIP of everything."""

import streamlit as st

from tempipe.report import build_report_zip, particles_csv, particles_parquet, slug
from tempipe_app import analysis, common, shapes, state
from tempipe_app import report as helpers

NONE = "(no comparison)"


def report_key(ds, other) -> str:
    from tempipe_app.clusters import table_key
    parts = [table_key(ds), repr(ds.clustering), repr(ds.shape_filter)]
    if other is not None:
        parts += [other.name, table_key(other)]
    return "|".join(parts)


with common.page_guard():
    st.title("Report")
    ds = common.dataset_picker("Dataset to report on")
    if ds is None:
        st.stop()
    if not ds.segmented:
        st.info(f"Segment **{ds.name}** first (page **Segmentation**, *Apply to the batch*).")
        st.stop()
    others = [n for n in state.store() if n != ds.name]
    other_name = st.selectbox("Compare with", [NONE, *others],
                              index=1 if others else 0, key="report_other")
    other = state.store().get(other_name)
    st.caption("The HTML report opens offline (plotly.js embedded, figures interactive) and "
               "states the parameters, the shape model, the input files with their sha256 "
               "and the date. The ZIP adds the tables as CSV and every figure as a PNG.")
    key = report_key(ds, other)
    built = st.session_state.get("report_built")
    if built is None or built["key"] != key:
        with st.spinner("Gathering results (shape groups, classifier, comparison)..."):
            _, card_path = analysis.model_paths()
            built = helpers.build(ds, other, shapes.read_card(card_path))
        built["key"] = key
        st.session_state["report_built"] = built
    for note in built["notes"]:
        st.warning(note)
    stem = slug(ds.name)
    st.success(f"Report ready: {len(built['sections'])} sections, "
               f"{sum(len(s.figures) for s in built['sections'])} figures, "
               f"{len(built['particles'])} particles.")
    c = st.columns(4)
    c[0].download_button("Report (HTML)", built["html"], f"{stem}-report.html", "text/html",
                         key="dl_html", type="primary")
    c[1].download_button("Particles (CSV)", particles_csv(built["particles"]),
                         f"{stem}-particles.csv", "text/csv", key="dl_csv")
    c[2].download_button("Particles (Parquet)", particles_parquet(built["particles"]),
                         f"{stem}-particles.parquet", "application/octet-stream",
                         key="dl_parquet")
    if built.get("zip") is None:
        if c[3].button("Prepare the ZIP (figures as PNG)", key="build_zip"):
            bar = common.ProgressBar("Rendering figures")
            built["zip"] = build_report_zip(built["html"], built["particles"],
                                            built["summary"], built["sections"],
                                            progress=bar)
            bar.done()
            st.rerun()
    else:
        c[3].download_button("Everything (ZIP)", built["zip"], f"{stem}-report.zip",
                             "application/zip", key="dl_zip")
    st.subheader("Contents")
    for section in built["sections"]:
        items = [*section.figures, *section.tables]
        st.markdown(f"- **{section.title}**: " + ", ".join(items))
    st.markdown("- **Parameters**, **Shape model**, **Input files** (name, sha256, scale)")
    with st.expander("Summary (summary.json)"):
        st.json(built["summary"], expanded=False)
