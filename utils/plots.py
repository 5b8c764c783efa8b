"""Plotly set-up shared by every chapter: figures are interactive in Jupyter and in the book.

In Jupyter, figures render through plotly's own mimetype. For the book, each figure also
carries a small HTML snippet that draws it with the page's ``Plotly`` (served from the book's
``_static/plotly.min.js``, so the book works offline too).
"""
import plotly.io as pio
from plotly.io.base_renderers import MimetypeRenderer


class BookHtmlRenderer(MimetypeRenderer):
    """Emit ``text/html`` that draws the figure with a page-level ``Plotly`` object."""

    def to_mimebundle(self, fig_dict):
        html = pio.to_html(fig_dict, include_plotlyjs=False, full_html=False, validate=False)
        return {"text/html": html}


pio.renderers["book_html"] = BookHtmlRenderer()
pio.renderers.default = "plotly_mimetype+book_html"
pio.templates.default = "plotly_white"
