"""Page helpers of the tempipe dashboard (``app.py`` + ``pages/``), split by page.

Nothing here computes science: the helpers hold the per-session dataset store
(:mod:`tempipe_app.state`), cache the calls into :mod:`tempipe` by content and
parameters (:mod:`tempipe_app.analysis`), turn errors into words (:mod:`tempipe_app.common`)
and build the widgets and figures of one page each.
"""
