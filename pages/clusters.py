"""Page 4 - Clusters: shape groups found without labels, their figures and statistics."""

import streamlit as st

from tempipe.figures import confusion_matrix
from tempipe.figures_montage import group_montage, group_overlay, population_montage
from tempipe.population import group_feature_statistics, population_table, statistics_columns
from tempipe_app import analysis, clusters, common

BEST = "best (highest ccc)"


def choice_panel(ds, table) -> None:
    algorithms, sets = clusters.choices(table)
    c = st.columns(3)
    current = ds.clustering
    alg = c[0].selectbox("Algorithm", [BEST, *algorithms],
                         index=([BEST, *algorithms].index(current.get("algorithm") or BEST)),
                         format_func=lambda a: clusters.ALGORITHM_NAMES.get(a, a),
                         key=f"cl_alg_{ds.uid}")
    fset = c[1].selectbox("Feature set", [BEST, *sets],
                          index=[BEST, *sets].index(current.get("feature_set") or BEST)
                          if (current.get("feature_set") or BEST) in [BEST, *sets] else 0,
                          format_func=lambda s: clusters.FEATURE_SET_NAMES.get(s, s),
                          key=f"cl_set_{ds.uid}")
    auto = c[2].checkbox("K from the silhouette", value=current.get("k") is None,
                         key=f"cl_auto_{ds.uid}")
    k = None if auto else c[2].slider("Number of groups K", 2, 12, current.get("k") or 4,
                                      key=f"cl_k_{ds.uid}")
    ds.clustering = {"algorithm": None if alg == BEST else alg,
                     "feature_set": None if fset == BEST else fset, "k": k}


def figure_tabs(ds, pop) -> None:
    tabs = st.tabs(["Parameter space (3D)", "Histograms", "Dendrogram", "Parallel coordinates",
                    "PCA", "Montages", "On the micrographs", "Statistics", "Classifier"])
    key = pop.groups_key
    with tabs[0]:
        if {"p", "d", "l_ratio"} <= set(pop.table.columns):
            st.plotly_chart(clusters.figure("scatter_3d", key, pop), key="cl_3d")
        else:
            st.info("The 3-D parameter space needs the shape CNN: run it on **Shape inference**.")
    with tabs[1]:
        cols = statistics_columns(pop.table)
        default = cols.index("major_axis_length_nm") if "major_axis_length_nm" in cols else 0
        column = st.selectbox("Feature", cols, index=default, key="cl_hist_col")
        st.plotly_chart(clusters.figure("histogram", key, pop, column=column), key="cl_hist")
    with tabs[2]:
        st.plotly_chart(clusters.figure("dendrogram", key, pop), key="cl_dendro")
    with tabs[3]:
        st.plotly_chart(clusters.figure("parallel", key, pop), key="cl_parallel")
    with tabs[4]:
        st.plotly_chart(clusters.figure("pca", key, pop), key="cl_pca")
    with tabs[5]:
        crops = analysis.particle_crops(ds)
        st.plotly_chart(group_montage(crops, pop.groups.labels), key="cl_montage")
        st.plotly_chart(population_montage(crops, pop.groups.labels), key="cl_popmontage")
    with tabs[6]:
        overlay_tab(ds, pop)
    with tabs[7]:
        st.write("Per group (paper Table 1):")
        st.dataframe(population_table(pop.table, pop.groups.labels), width="stretch")
        st.write("Mean and sd of every feature and CNN parameter per group (Tables S10-S11):")
        st.dataframe(group_feature_statistics(pop.table, pop.groups.labels), width="stretch")
    with tabs[8]:
        classifier_tab(pop)


def overlay_tab(ds, pop) -> None:
    names = [e.name for e in ds.images if e.name in ds.results]
    name = st.selectbox("Image", names, key="cl_overlay_image")
    rows = (pop.table["image"] == name).to_numpy()
    result = ds.results[name]
    fig = group_overlay(ds.entry(name).micrograph.image, result.labels, pop.table[rows],
                        pop.groups.labels[rows])
    st.plotly_chart(fig.update_layout(height=800), key="cl_overlay")


def classifier_tab(pop) -> None:
    st.caption("A support-vector classifier learns the groups (80/20 stratified split, "
               "hyper-parameters by Bayesian optimisation); it labels other datasets on "
               "**Compare**.")
    flag = f"clf_{pop.groups_key}"
    if not st.session_state.get(flag):
        if not st.button("Train the classifier", key="cl_train"):
            return
        st.session_state[flag] = True
    with st.spinner("Training the classifier (up to ~20 s)..."):
        clf = clusters.classifier(pop)
    c = st.columns(3)
    c[0].metric("Test accuracy", f"{clf.test_accuracy:.1%}")
    c[1].metric("Cross-validated accuracy", f"{clf.cv_accuracy:.1%} ± {clf.cv_sd:.1%}")
    c[2].metric("Kernel", str(clf.best_params.get("kernel")))
    if clf.left_out:
        st.caption(common.left_out_note(clf.left_out))
    st.plotly_chart(confusion_matrix(clf), key="cl_confusion")


with common.page_guard():
    st.title("Clusters")
    ds = common.dataset_picker()
    if ds is None:
        st.stop()
    if not ds.segmented:
        st.info(f"Segment **{ds.name}** first (page **Segmentation**, *Apply to the batch*).")
        st.stop()
    if not ds.shaped:
        st.warning("The shape CNN has not run on this dataset: groups use morphology features "
                   "only. Run it on **Shape inference** for the CNN feature sets.")
    with st.spinner("Comparing 3 algorithms × feature sets for K = 2..12..."):
        table = clusters.particles(ds)
        choice_panel(ds, table)
        pop = clusters.population(ds)
    g = pop.groups
    st.subheader("Cluster comparison")
    st.dataframe(clusters.comparison_table(pop.comparison), hide_index=True, width="stretch")
    with st.expander("Silhouette against K"):
        st.plotly_chart(clusters.figure("silhouettes", pop.key, pop), key="cl_sil")
    st.success(f"**{g.k} shape groups**: {clusters.ALGORITHM_NAMES[g.algorithm]} on "
               f"{clusters.FEATURE_SET_NAMES[g.feature_set]}, {len(pop.table)} particles "
               f"({int((g.labels == 0).sum())} not grouped).")
    figure_tabs(ds, pop)
