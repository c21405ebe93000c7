"""Page 5 - Compare: two datasets side by side (demo: hot-injection against LARP)."""

import plotly.graph_objects as go
import streamlit as st

from tempipe.figures import group_color, size_comparison
from tempipe.figures_montage import group_montage
from tempipe_app import analysis, clusters, common, state
from tempipe_app.datasets import DEMO_TITLES


def pick_two():
    names = list(state.store())
    if len(names) < 2:
        st.info("Comparing needs two datasets: load the demo batches (hot-injection and "
                "LARP) or upload a second batch on **Datasets**.")
        st.page_link("pages/datasets.py", label="Go to Datasets", icon=":material/folder_open:")
        st.stop()
    demo = [n for n in DEMO_TITLES.values() if n in names]
    first, second = (demo if len(demo) == 2 else names[:2])
    c = st.columns(2)
    a = c[0].selectbox("Dataset A (its groups are the reference)", names,
                       index=names.index(first), key="cmp_a")
    b = c[1].selectbox("Dataset B", names, index=names.index(second), key="cmp_b")
    return state.store()[a], state.store()[b]


def ensure_analysed(*datasets) -> None:
    missing = [d for d in datasets if not d.segmented or (not d.shaped and not d.shape_error)]
    if not missing:
        return
    st.info("Not analysed yet: " + ", ".join(d.name for d in missing) + ".")
    if not st.button("Segment and run the shape CNN on them now", key="cmp_run"):
        st.stop()
    for d in missing:
        bar = common.ProgressBar(f"Segmenting {d.name}")
        analysis.run_segmentation(d, bar)
        bar.done()
        bar = common.ProgressBar(f"Shape inference on {d.name}")
        analysis.run_shape_inference(d, bar)
        bar.done()


def fractions_figure(fractions, names) -> go.Figure:
    fig = go.Figure()
    for name, pattern in zip(names, ("", "/")):
        fig.add_trace(go.Bar(x=[f"group {g}" for g in fractions.index],
                             y=100 * fractions[f"{name} fraction"], name=name,
                             marker={"color": [group_color(g) for g in fractions.index],
                                     "pattern": {"shape": pattern}},
                             text=fractions[f"{name} n"], textposition="outside"))
    fig.update_layout(barmode="group", title="Group fractions (bar labels: particles)",
                      yaxis_title="share of the grouped particles (%)", xaxis_title="shape group")
    return fig


with common.page_guard():
    st.title("Compare")
    ds_a, ds_b = pick_two()
    ensure_analysed(ds_a, ds_b)
    with st.spinner("Grouping A, training its classifier, labelling B, bootstrapping..."):
        pop_a, table_b, result, labels_b = clusters.compare(ds_a, ds_b)
    names = result.names
    st.caption(f"The shape groups of **{names[0]}** ({pop_a.groups.k} groups) train a "
               f"classifier that labels **{names[1]}**, so both share one numbering.")
    left_out = clusters.classifier(pop_a).left_out  # cached: compare() trained it
    if left_out:
        st.caption(common.left_out_note(left_out))
    left, right = st.columns(2)
    left.plotly_chart(size_comparison(pop_a.table, table_b, names, tests=result.tests),
                      key="cmp_size")
    right.plotly_chart(fractions_figure(result.fractions, names), key="cmp_fractions")
    st.subheader("Statistics with 95 % bootstrap confidence intervals")
    st.dataframe(result.table, width="stretch")
    st.subheader("Tests")
    st.dataframe(result.tests, hide_index=True, width="stretch")
    st.subheader("Particles of each group")
    left, right = st.columns(2)
    left.markdown(f"**{names[0]}**")
    left.plotly_chart(group_montage(analysis.particle_crops(ds_a), pop_a.groups.labels,
                                    max_per_group=60, columns=10), key="cmp_montage_a")
    right.markdown(f"**{names[1]}**")
    right.plotly_chart(group_montage(analysis.particle_crops(ds_b), labels_b,
                                     max_per_group=60, columns=10), key="cmp_montage_b")
