"""Sphinx extension: list each page script once.

sphinx-thebe registers its inline configuration script whenever documents are read,
and jupyter-book reads them more than once, so every page declared ``THEBE_JS_URL``
twice and the browser reported a SyntaxError. Dropping repeats fixes that.
"""


def _key(script) -> tuple:
    # The same inline script is registered once with filename None and once with "".
    return (script.filename or "", tuple(sorted(script.attributes.items())))


def _unique(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files", [])
    seen, unique = set(), []
    for script in scripts:
        if _key(script) not in seen:
            seen.add(_key(script))
            unique.append(script)
    scripts[:] = unique  # in place: the builder's own list


def setup(app):
    app.connect("html-page-context", _unique, priority=900)  # after the other extensions
    return {"parallel_read_safe": True, "parallel_write_safe": True}
