"""tempipe dashboard: ``streamlit run app.py`` (pages in ``pages/``, helpers in ``tempipe_app``)."""

import streamlit as st

st.set_page_config(page_title="tempipe", page_icon=":material/biotech:", layout="wide")
st.navigation([
    st.Page("pages/datasets.py", title="Datasets", icon=":material/folder_open:", default=True),
    st.Page("pages/segmentation.py", title="Segmentation", icon=":material/content_cut:"),
    st.Page("pages/shapes.py", title="Shape inference", icon=":material/hexagon:"),
    st.Page("pages/clusters.py", title="Clusters", icon=":material/bubble_chart:"),
    st.Page("pages/compare.py", title="Compare", icon=":material/compare:"),
    st.Page("pages/report.py", title="Report", icon=":material/description:"),
]).run()
