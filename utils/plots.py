"""Plotly set-up shared by every chapter: figures are interactive in Jupyter and in the book.

In Jupyter, figures render through plotly's own mimetype. For the book, each figure also
carries a small HTML snippet that draws it with the page's ``Plotly`` (served from the book's
``_static/plotly.min.js``, so the book works offline too).
"""
import plotly.io as pio
from plotly.io.base_renderers import MimetypeRenderer


class BookHtmlRenderer(MimetypeRenderer):
    """Emit ``text/html`` that draws the figure with a page-level ``Plotly`` object.

    In the book a figure is as wide as the text column, whatever width it asked for in Jupyter:
    a fixed width wider than the column would hide the right-hand panels of a multi-panel
    figure (and their colour bars). Plotly's toolbar is left out: it covers the titles.
    """

    def to_mimebundle(self, fig_dict):
        layout = {key: value for key, value in fig_dict.get("layout", {}).items() if key != "width"}
        fig_dict = {**fig_dict, "layout": {**layout, "autosize": True}}
        html = pio.to_html(fig_dict, include_plotlyjs=False, full_html=False, validate=False,
                           default_width="100%", config={"responsive": True, "displayModeBar": False})
        return {"text/html": html}


pio.renderers["book_html"] = BookHtmlRenderer()
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
