"""course_lib.show.source: the code a lesson shows is the code that runs, without docstrings or comments."""

import textwrap

from course_lib.lessons import plain
from course_lib.show.source import code_of, show_source


def sample(x):
    """A docstring
    over two lines."""
    # a comment alone on its line
    y = x + 1  # a trailing comment
    text = "# not a comment"
    return y, text


class Holder:
    """Class docstring."""

    def method(self):
        """Method docstring."""
        return 1  # trailing


def test_code_of_drops_docstrings_and_comments_and_keeps_the_code():
    assert code_of(sample) == textwrap.dedent('''\
        def sample(x):
            y = x + 1
            text = "# not a comment"
            return y, text
        ''')
    assert code_of(Holder) == "class Holder:\n\n    def method(self):\n        return 1\n"
    assert code_of(Holder.method) == "def method(self):\n    return 1\n"


def test_the_shown_code_runs_as_the_library_does():
    namespace = {"math": plain.math}
    exec(code_of(plain.warmup_cosine), namespace)
    for t in range(12):
        assert namespace["warmup_cosine"](3, 10)(t) == plain.warmup_cosine(3, 10)(t)


def test_show_source_text_form_is_the_code():
    shown = show_source(sample)
    assert repr(shown) == code_of(sample)
    assert "highlight" in shown._repr_html_()
