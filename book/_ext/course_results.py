"""Small Sphinx extension: chapter outputs of ``course_lib.book.results.report`` render cleanly.

``report`` displays one output with three MIME types: text/html (the table the book shows),
text/plain, and the machine-readable record ``application/vnd.course-results+json`` that
scripts/run_chapters.py reads back. myst-nb renders every MIME type of an output while parsing
(it picks the one to show later) and warns "skipping unknown output mime type" for types it does
not know, which the build's -W turns into an error. This registers a myst-nb MIME renderer plugin
(the documented ``MimeRenderPlugin`` protocol, normally found through the entry-point group
``myst_nb.mime_renderers``) that claims that one type and renders nothing, so the text/html table
is shown and any other unknown MIME type still warns. tests/unit/test_results.py checks that the
type below equals ``course_lib.book.results.RESULTS_MIME``.
"""
from __future__ import annotations

RESULTS_MIME = "application/vnd.course-results+json"


class CourseResultsRecord:
    """myst-nb MIME renderer plugin: the record is data for scripts, not for readers."""

    mime_priority_overrides = [("*", RESULTS_MIME, None)]  # never selected for display

    @staticmethod
    def handle_mime(renderer, data, inline):
        return [] if data.mime_type == RESULTS_MIME else None


def setup(app):
    from myst_nb.core import render

    if not getattr(render.load_mime_renders, "_course_results", False):
        entry_point_plugins = render.load_mime_renders

        def load_mime_renders():
            return [*entry_point_plugins(), CourseResultsRecord]

        load_mime_renders._course_results = True
        render.load_mime_renders = load_mime_renders
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
