"""Plotly set-up shared by every chapter: figures are interactive in Jupyter and in the book.

In Jupyter, figures render through plotly's own mimetype. For the book, each figure also
carries a small HTML snippet that draws it with the page's ``Plotly`` (served from the book's
``_static/plotly.min.js``, so the book works offline too).

Explorers (ipywidgets) need a kernel. Each one therefore also carries a static twin: one plotly
figure that holds all of its views behind a slider, which is what a page without a kernel, such
as the book, shows.
"""
import functools

import plotly.graph_objects as go
import plotly.io as pio
from plotly.io.base_renderers import MimetypeRenderer


class BookHtmlRenderer(MimetypeRenderer):
    """Emit ``text/html`` that draws the figure with a page-level ``Plotly`` object.

    In the book a figure is as wide as the text column, whatever width it asked for in Jupyter:
    a fixed width wider than the column would hide the right-hand panels of a multi-panel
    figure (and their colour bars). Plotly's toolbar is left out: it covers the titles.
    """

    def to_mimebundle(self, fig_dict, css_class=None):
        layout = {key: value for key, value in fig_dict.get("layout", {}).items() if key != "width"}
        fig_dict = {**fig_dict, "layout": {**layout, "autosize": True}}
        html = pio.to_html(fig_dict, include_plotlyjs=False, full_html=False, validate=False,
                           default_width="100%", config={"responsive": True, "displayModeBar": False})
        if css_class:
            html = f'<div class="{css_class}">{html}</div>'
        return {"text/html": html}


pio.renderers["book_html"] = BookHtmlRenderer()
EXPLORER_CLASS = "course-explorer"  # the HTML class of an explorer's static twin (tests/test_book.py)
pio.renderers.default = "plotly_mimetype+book_html"
pio.templates.default = "plotly_white"


def redrawn_figure(make_figure, controls):
    """An ipywidgets ``Output`` showing ``make_figure()``, redrawn when any control's value changes.

    Each drawing replaces the output's contents (``output.outputs``) rather than being printed
    into it, so it behaves the same with a kernel or without one, the widget shows exactly what
    it holds (a test reads the figure back), and running the cell sends no output messages
    through the widget: headless execution (CI, the book) never waits on it.
    """
    import ipywidgets as widgets

    output = widgets.Output()

    def redraw(_=None):
        bundle = make_figure()._repr_mimebundle_()
        output.outputs = ({"output_type": "display_data", "data": bundle, "metadata": {}},)

    redraw()
    for control in controls:
        control.observe(redraw, names="value")
    return output


def stepped_figure(views: list[tuple[str, go.Figure]], slider_label: str, active: int = 0,
                   gap: int = 60) -> go.Figure:
    """One figure holding every view, one shown at a time, chosen by a slider named ``slider_label``.

    ``views`` are (step label, figure) pairs drawn on the same axes, for instance one per head or
    per sparsity. The result has all their traces; each slider step makes one view's traces
    visible and shows that view's title. It opens on view ``active``, whose layout (axes, size,
    title) it keeps. The slider sits ``gap`` pixels below the plot area, clear of the x axis's
    tick labels and title.
    """
    fig = go.Figure(layout=views[active][1].layout)
    owner = []  # owner[k]: the view that trace k belongs to
    for v, (_, view) in enumerate(views):
        for trace in view.data:
            fig.add_trace(trace.update(visible=v == active))
            owner.append(v)
    steps = [dict(label=label, method="update",
                  args=[{"visible": [o == v for o in owner]}, {"title.text": view.layout.title.text}])
             for v, (label, view) in enumerate(views)]
    fig.update_layout(sliders=[dict(active=active, steps=steps, currentvalue=dict(prefix=f"{slider_label}: "),
                                    pad=dict(t=gap), x=0, len=1, y=0, yanchor="top")],
                      margin=dict(b=(fig.layout.margin.b or 0) + gap + 70),
                      height=(fig.layout.height or 450) + gap + 70)
    return fig


@functools.cache
def _explorer_class():
    """``Explorer``: an ipywidgets VBox whose display also offers its static twin as HTML."""
    import ipywidgets as widgets

    class Explorer(widgets.VBox):
        """A live explorer. Jupyter shows the widget; a page without a kernel shows ``static``.

        Both go in one output: frontends with a widget manager prefer the widget view, and the
        book leaves that mimetype out (``nb_mime_priority_overrides`` in _config.yml).
        """

        def __init__(self, children, static: go.Figure):
            super().__init__(children)
            self.static = static

        def _repr_mimebundle_(self, **kwargs):
            bundle = super()._repr_mimebundle_(**kwargs)
            html = BookHtmlRenderer().to_mimebundle(self.static.to_plotly_json(), css_class=EXPLORER_CLASS)
            return {**bundle, **html}

    return Explorer


def explorer(rows: list, static: go.Figure):
    """A widget box of ``rows`` (controls, then a :func:`redrawn_figure`) with its static twin.

    ``static`` (usually a :func:`stepped_figure`) should hold the views the controls reach, so
    the book shows the same thing a reader would see by moving them.
    """
    return _explorer_class()(rows, static)
